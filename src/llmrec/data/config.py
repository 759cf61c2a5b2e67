"""Which data set a run uses and how it is read."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DataFormat = Literal["auto", "p5", "unisrec", "dealrec", "byo", "recbole"]


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(
        "beauty-mini", description="a named data set (beauty, toys, ...) or a folder path"
    )
    format: DataFormat = Field("auto", description="file format; auto detects it from the files")
    data_dir: Path | None = Field(
        None, description="root of the named data sets (default: $LLMREC_DATA)"
    )
    skip_bad: bool = Field(
        False, description="skip malformed lines/users and report counts instead of failing"
    )
