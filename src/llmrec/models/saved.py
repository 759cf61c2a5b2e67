"""Reading a saved model folder: every missing, truncated, garbage or tampered file becomes a
`ModelFormatError` naming the file and the problem. Tensor names and shapes are checked from the
safetensors header before anything is allocated, and weights must be finite."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from llmrec.atomic import TEMPORARY_SUFFIX, complete_copy, sibling
from llmrec.data.catalogue import Catalogue
from llmrec.errors import DataError, ModelFormatError

logger = logging.getLogger(__name__)

MAX_LISTED = 5  # tensor names listed in a message
JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def saved_folder(path: Path) -> Path:
    """The complete copy of the model folder `path` (see llmrec.atomic): `path` itself, or the
    copy a save killed between its two renames left, which is loaded with a warning."""
    copy = complete_copy(path)
    if copy is None:
        partial = sibling(path, TEMPORARY_SUFFIX)
        if partial.exists():
            raise ModelFormatError(
                f"no model here, only {partial.name}, the partial copy of a save that was "
                "interrupted while writing; save the model again",
                path,
            )
        raise ModelFormatError("no such model folder", path)
    if copy != path:
        logger.warning(
            "%s is missing: a save was interrupted between its two renames; loading the complete "
            "copy %s (the next save to %s finishes the swap)",
            path,
            copy,
            path,
        )
    return copy


def require(path: Path) -> Path:
    """`path` if it exists; else the folder is incomplete (a file deleted, a save cut short)."""
    if not path.exists():
        raise ModelFormatError("missing: the model folder is incomplete", path)
    return path


def read_json(file: Path, kind: type[dict] | type[list]) -> Any:
    """The JSON document of `file`, which must be UTF-8 and hold a `kind` (object or array)."""
    require(file)
    try:
        value = json.loads(file.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        raise _unreadable(error, file) from None
    if not isinstance(value, kind):
        found = JSON_TYPES[type(value)]
        raise ModelFormatError(f"expected {JSON_TYPES[kind]}, found {found}", file)
    return value


def read_catalogue(file: Path) -> Catalogue:
    """The catalogue of a saved model (`items.jsonl`)."""
    require(file)
    try:
        return Catalogue.load_jsonl(file)
    except DataError as error:  # its message names the file, line and field
        raise ModelFormatError(str(error)) from None
    except (OSError, ValueError, RecursionError) as error:
        raise _unreadable(error, file) from None


def describe_validation(error: ValidationError) -> str:
    """A pydantic error on one line: `key: problem (got value); ...`."""
    problems = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "config"
        value = problem.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        problems.append(f"{key}: {problem['msg']}{shown}")
    return "; ".join(problems)


def tensor_shapes(file: Path) -> dict[str, tuple[int, ...]]:
    """{tensor name: shape} from the header of a safetensors file, reading no tensor data."""
    require(file)
    try:
        with safe_open(file, framework="pt") as handle:
            return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as error:
        raise ModelFormatError(f"not a readable safetensors file ({error})", file) from None


def check_tensor_header(file: Path, expected: Mapping[str, torch.Tensor]) -> None:
    """Refuse a safetensors file whose tensor names or shapes differ from `expected` (tensors of
    the model being loaded, possibly on the meta device): read from the header alone."""
    check_tensor_shapes(tensor_shapes(file), expected, file)


def check_tensor_shapes(
    shapes: Mapping[str, tuple[int, ...]], expected: Mapping[str, torch.Tensor], file: Path
) -> None:
    """Refuse saved tensors (`shapes`: name -> shape, of `file`) that are not `expected`."""
    missing, unexpected = sorted(expected.keys() - shapes), sorted(shapes.keys() - expected)
    if missing or unexpected:
        parts = [
            f"{kind} {_listed(names)}"
            for kind, names in [("missing", missing), ("unexpected", unexpected)]
            if names
        ]
        raise ModelFormatError(f"tensors do not match the model: {', '.join(parts)}", file)
    for name, tensor in expected.items():
        if shapes[name] != tuple(tensor.shape):
            raise ModelFormatError(
                f"tensor {name!r} has shape {list(shapes[name])}, but the model built from its "
                f"config needs {list(tensor.shape)}",
                file,
            )


def read_tensors(file: Path, expected: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, on the CPU, once their names, shapes and dtypes match
    `expected` and every floating-point value is finite."""
    check_tensor_header(file, expected)
    tensors = read_finite_tensors(file)
    for name, tensor in tensors.items():
        if tensor.dtype != expected[name].dtype:
            raise ModelFormatError(
                f"tensor {name!r} is {tensor.dtype}, the model needs {expected[name].dtype}", file
            )
    return tensors


def read_finite_tensors(file: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, on the CPU, refused unless readable and finite (for
    models whose shapes the caller checks itself: EASE, item-kNN)."""
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError) as error:
        raise ModelFormatError(f"not a readable safetensors file ({error})", file) from None
    for name, tensor in tensors.items():
        check_finite(name, tensor, file)
    return tensors


def check_finite(name: str, tensor: torch.Tensor, file: Path) -> None:
    """NaN or infinite weights would rank silently wrong (every score NaN): refused."""
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise ModelFormatError(f"tensor {name!r} holds NaN or infinite values", file)


def _unreadable(error: Exception, file: Path) -> ModelFormatError:
    """What reading a JSON (lines) file of a saved model ran into, as a ModelFormatError."""
    if isinstance(error, UnicodeDecodeError):
        problem = f"not UTF-8 text ({error.reason} at byte {error.start})"
    elif isinstance(error, OSError):
        problem = f"cannot be read ({error.strerror or error})"
    elif isinstance(error, RecursionError):
        problem = "not valid JSON (nested too deeply)"
    else:  # JSONDecodeError, or an integer of more than 4,300 digits
        problem = f"not valid JSON ({error})"
    return ModelFormatError(problem, file)


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more
