"""An MCP tool's parameters from declared arguments (core/arguments.py).

The SDK reads a tool's input schema, and builds the model it checks arguments with, from the function's
signature. `declared` gives a tool function taking `**arguments` one parameter per declared argument:
its JSON schema is the declaration's, and its type takes any value, because the service checks every
value (`Arguments.check`), so that a bad one is refused with the same text over MCP as over REST rather
than in pydantic's words.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import WithJsonSchema

from mcplookup_mcp.core.arguments import Arg, Arguments

F = TypeVar("F", bound=Callable[..., Any])


def _carrier(arg: Arg) -> Any:
    # The SDK parses a string given for a parameter of any type but `str` as JSON when it can (for
    # clients that send lists as JSON text): searched text stays `str`, so a query '[1, 2]' is searched
    # for as written, not turned into a list.
    kind: Any = str if arg.kind == "text" else Any
    return Annotated[kind, WithJsonSchema(arg.schema())]


def declared(arguments: Arguments) -> Callable[[F], F]:
    """Replaces the function's `**arguments` with the declared arguments, as keyword parameters."""

    def apply(fn: F) -> F:
        hints = typing.get_type_hints(fn)
        own = [
            parameter.replace(annotation=hints.get(parameter.name, parameter.annotation))
            for parameter in inspect.signature(fn).parameters.values()
            if parameter.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        declared_parameters = [
            inspect.Parameter(
                arg.name, inspect.Parameter.KEYWORD_ONLY, default=arg.default, annotation=_carrier(arg)
            )
            for arg in arguments.args
        ]
        fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [*own, *declared_parameters], return_annotation=hints.get("return", inspect.Signature.empty)
        )
        return fn

    return apply
