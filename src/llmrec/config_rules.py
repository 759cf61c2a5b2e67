"""The rules every config class follows (STYLE sec. 4): unknown keys are errors, values are
frozen, types are strict and floats finite.

Strict: an int refuses "5", 5.5 and true; a float refuses "1e-3" and true (an int is fine); a
bool refuses 1 and "yes". Config files are read so that YAML numbers arrive as numbers
(config.py). Tuple and Path fields say `strict=False`, since YAML writes them as lists and
strings; their items stay strict.
"""

from __future__ import annotations

from pydantic import ConfigDict

CONFIG_RULES = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
