"""Command-line options made from an options model's fields, so that a command declares none of them twice.

``@model_options(TrainOptions, ...)`` on a Typer command gives it one ``--option`` per field (a group such as
``lora`` as ``--lora-r``, ...): the field's type, its description as the help with its default, and no default of its
own, so the command gets only what was given, shaped like the model (``{"epochs": 2.0, "lora": {"r": 8}}``), in
its ``given`` argument. Fields of a type a command line cannot carry (lists, tables) are left to a config file.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

_SCALARS = (str, int, float, bool, Path)


def _option_type(annotation: Any) -> Any | None:
    """The type an option takes for a field of this annotation (``X | None`` as ``X``), or None for none."""
    if typing.get_origin(annotation) in (UnionType, typing.Union):
        kinds = [a for a in typing.get_args(annotation) if a is not NoneType]
        return _option_type(kinds[0]) if len(kinds) == 1 else None
    if annotation in _SCALARS or typing.get_origin(annotation) is Literal:
        return annotation
    return None


def _help(field: FieldInfo) -> str:
    text = field.description or ""
    if field.default_factory is None and field.default is not None:
        shown = field.default.name if isinstance(field.default, Path) else field.default
        text += f" (default: {shown})"
    return text


def model_options(model: type[BaseModel], *, groups: tuple[str, ...] = (), skip: tuple[str, ...] = (),
                  names: dict[str, tuple[str, ...]] | None = None) -> Callable[[Callable], Callable]:  # fmt: skip
    """Decorate a command whose last parameter is ``given: dict``: ``model``'s fields (and those of the nested
    models named in ``groups``) become its options. ``skip``: fields the command sets itself (``"lora.alpha"`` for
    one of a group's); ``names``: option names other than ``--field-name``."""
    names = names or {}
    fields: dict[str, tuple[str, FieldInfo]] = {}  # parameter name -> (dotted field path, field)
    for name, field in model.model_fields.items():
        if name in groups:
            for inner, inner_field in field.annotation.model_fields.items():  # type: ignore[union-attr]
                fields[f"{name}__{inner}"] = (f"{name}.{inner}", inner_field)
        elif name not in skip:
            fields[name] = (name, field)

    def decorate(command: Callable) -> Callable:
        hints = typing.get_type_hints(command, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(command).parameters.values() if p.name != "given"]  # fmt: skip
        made = {}
        for parameter, (path, field) in fields.items():
            kind = _option_type(field.annotation)
            if kind is None or path in skip:
                continue
            flag = path.replace(".", "-").replace("_", "-")
            flags = names.get(path, (f"--{flag}/--no-{flag}" if kind is bool else f"--{flag}",))
            option = typer.Option(*flags, help=_help(field), show_default=False)
            made[parameter] = inspect.Parameter(parameter, inspect.Parameter.KEYWORD_ONLY, default=None,
                                                annotation=Annotated[kind | None, option])  # fmt: skip

        def run(**values: Any) -> Any:
            given: dict[str, Any] = {}
            for parameter in made:
                value = values.pop(parameter)
                if value is None:
                    continue
                group, _, inner = fields[parameter][0].partition(".")
                if inner:
                    given.setdefault(group, {})[inner] = value
                else:
                    given[group] = value
            return command(**values, given=given)

        run.__signature__ = inspect.Signature([*own, *made.values()])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}  # type: ignore[attr-defined]
        run.__name__, run.__doc__ = command.__name__, command.__doc__
        return run

    return decorate
