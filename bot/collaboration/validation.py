"""Pydantic validation errors as problems a person can fix: the key, what was found, a hint."""

from __future__ import annotations

import types
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic_core import ErrorDetails

from bot.collaboration.problems import (
    EXAMPLE_FILE,
    KeyPath,
    Report,
    did_you_mean,
    hints,
    key_text,
    quoted,
)
from bot.i18n import _

_M = TypeVar("_M", bound=BaseModel)


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _annotation_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> Any:
    """The type expected at `loc` inside `model` (list entries resolved to their item type)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            if get_origin(current) is not list:
                return None
            current = get_args(current)[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field_info = current.model_fields.get(part)
            if field_info is None:
                return None
            current = field_info.annotation
        else:
            return None
    return _unwrap(current)


def _choices(annotation: Any) -> list[str]:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(member.value) for member in annotation]
    if get_origin(annotation) is Literal:
        return [str(arg) for arg in get_args(annotation)]
    return []


def _type_mismatches() -> dict[str, tuple[str, str]]:
    """Per pydantic error type: what was expected ({value} is what was found), and the fix."""
    text = (
        _("expected text, found {value}"),
        _("write text; put it in quotes if it looks like a number, a date or yes/no"),
    )
    truth = (_("expected true or false, found {value}"), _("write true or false"))
    number = (
        _("expected a whole number, found {value}"),
        _("write a number without quotes, e.g. 14"),
    )
    listing = (
        _("expected a list, found {value}"),
        _('write one entry per line starting with "- ", or [a, b] on one line'),
    )
    mapping = (
        _("expected a mapping of keys, found {value}"),
        _('write "key: value" lines indented under this one'),
    )
    return {
        "string_type": text,
        "bool_type": truth,
        "bool_parsing": truth,
        "int_type": number,
        "int_parsing": number,
        "int_from_float": number,
        "list_type": listing,
        "model_type": mapping,
        "model_attributes_type": mapping,
        "dict_type": mapping,
    }


def _add_validation_error(
    report: Report, model: type[BaseModel], path: KeyPath, error: ErrorDetails
) -> None:
    loc = tuple(error["loc"])
    full = (*path, *loc)
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    found = quoted(value)
    last = str(loc[-1]) if loc else ""
    if kind == "config":
        report.add(full, str(ctx["message"]), str(ctx["hint"]))
    elif kind == "invalid_key":
        # YAML reads 1, yes and ~ as a number, true and null: show the key as it was written.
        written = key_text(value)
        report.add(
            (*path, *loc[:-1], written),
            _("key {key} is not a name").format(key=written),
            _("keys are names such as slug or name; quote a key that must be a number"),
        )
    elif kind == "missing":
        report.add(
            full,
            _('missing required key "{key}"').format(key=last),
            _('add "{key}: …" to this entry; {example} shows one').format(
                key=last, example=EXAMPLE_FILE
            ),
        )
    elif kind == "extra_forbidden":
        parent = _annotation_at(model, loc[:-1])
        allowed = (
            list(parent.model_fields)
            if isinstance(parent, type) and issubclass(parent, BaseModel)
            else []
        )
        report.add(
            full,
            _('unknown key "{key}"').format(key=last),
            hints(
                _("allowed keys here: {keys}").format(keys=", ".join(allowed)),
                did_you_mean(last, allowed),
            ),
        )
    elif kind in ("enum", "literal_error"):
        choices = _choices(_annotation_at(model, loc))
        report.add(
            full,
            _("{value} is not allowed here").format(value=found),
            hints(
                _("use one of: {choices}").format(choices=", ".join(choices)),
                did_you_mean(value, choices),
            ),
        )
    elif kind in (mismatches := _type_mismatches()):
        message, hint = mismatches[kind]
        report.add(full, message.format(value=found), hint)
    elif kind in ("greater_than_equal", "less_than_equal"):
        report.add(
            full,
            _("{value} is out of range").format(value=found),
            _("use a number from {low} to {high}").format(
                low=_annotation_bound(model, loc, "ge"), high=_annotation_bound(model, loc, "le")
            ),
        )
    elif kind == "too_short":
        choices = _choices(_annotation_at(model, (*loc, 0)))
        report.add(
            full,
            _("the list is empty"),
            _("list at least one of: {choices}").format(choices=", ".join(choices))
            if choices
            else _("list at least one entry"),
        )
    else:
        report.add(
            full, _("invalid value {value}: {reason}").format(value=found, reason=error["msg"])
        )


def _annotation_bound(model: type[BaseModel], loc: tuple[str | int, ...], name: str) -> str:
    parent = _annotation_at(model, loc[:-1])
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)) or not loc:
        return "?"
    field_info = parent.model_fields.get(str(loc[-1]))
    for item in field_info.metadata if field_info else []:
        bound = getattr(item, name, None)
        if bound is not None:
            return str(bound)
    return "?"


def validate(model: type[_M], raw: object, path: KeyPath, report: Report) -> _M | None:
    """`raw` as a `model`, or None after reporting every problem under `path`."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            _add_validation_error(report, model, path, error)
        return None
