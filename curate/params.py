"""Parameters as people read them: the table `curate stages NAME` prints, read from a stage's
params model so that it never drifts from the code, and validation errors in plain words (the
field, what is wrong, the valid names with a "did you mean"), never pydantic's raw dump."""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined


def type_name(annotation: Any) -> str:
    """A parameter's type as a user writes it: "float", "list[str]", "a|b" for a Literal,
    "int, optional" for `int | None`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "|".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        named = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(named) + (", optional" if type(None) in args else "")
    if origin in (list, tuple, set, dict):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args if a is not Ellipsis)}]"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def param_rows(model: type[BaseModel]) -> list[dict[str, str]]:
    """One row per parameter of a params model: name, type, default ("required" when there is
    none) and description."""
    rows = []
    for name, field in model.model_fields.items():
        if field.default is PydanticUndefined and field.default_factory is None:
            default = "required"
        else:
            default = field.get_default(call_default_factory=True)
            default = "none" if default is None else str(default)
        rows.append({"name": name, "type": type_name(field.annotation), "default": default,
                     "description": field.description or ""})
    return rows


def explain(error: ValidationError, model: type[BaseModel] | None = None) -> str:
    """Every problem of a validation error on one line each: where, what, and for an unknown
    name the names `model` accepts there, with the closest one."""
    lines = []
    for problem in error.errors(include_url=False):
        location = [str(part) for part in problem["loc"]]
        where = ".".join(location)
        if problem["type"] == "extra_forbidden":
            lines.append(_unknown(location[-1], _fields_at(model, problem["loc"][:-1])))
        elif problem["type"] == "missing":
            lines.append(f"{where}: required, not given")
        else:
            message = problem["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            shown = problem.get("input")
            got = f" (got {shown!r:.60})" if isinstance(shown, (str, int, float)) and where else ""
            lines.append(f"{where}: {message}{got}" if where else message)
    return "\n".join(f"  - {line}" for line in lines)


def _unknown(name: str, fields: list[str]) -> str:
    close = difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    valid = f" (valid: {', '.join(fields)})" if fields else ""
    return f"unknown parameter {name!r}{hint}{valid}"


def _fields_at(model: type[BaseModel] | None, location: tuple) -> list[str]:
    """The field names of the model found by following `location` from `model` (list indices
    and optional types stepped through); none when the path leaves the models."""
    for part in location:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field else None
    return list(model.model_fields) if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found:
            return found
    return None
