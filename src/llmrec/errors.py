"""Exception hierarchy: every error a user can cause names what to fix."""

from __future__ import annotations

from pathlib import Path


class LlmrecError(Exception):
    """Base class for all llmrec errors."""


class ConfigError(LlmrecError):
    """A configuration value is missing, unknown or invalid."""


class DataError(LlmrecError):
    """Bad input data; the message names the file, the line (1-based) and the field."""

    def __init__(
        self,
        problem: str,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = None if path is None else Path(path)
        self.line = line
        self.field = field
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {problem}" if prefix else problem)


class ModelFormatError(LlmrecError):
    """A saved model directory is incomplete, corrupt or from an incompatible catalogue; the
    message names the file (or folder) and the problem."""

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.problem = problem
        self.path = None if path is None else Path(path)
        super().__init__(problem if path is None else f"{path}: {problem}")


class TrainingDivergedError(LlmrecError):
    """The training loss became NaN or infinite; the message names the step, the learning rate
    and the last good checkpoint."""
