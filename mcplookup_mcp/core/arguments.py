"""Declared arguments: one declaration of an operation's arguments (name, type, bounds, choices, default,
description), from which come the MCP tool's input schema, the REST query parsing, the OpenAPI
parameters and the checks with their refusal texts (`validation.refuse`'s form).

The checks run in the service, on whatever a transport received (JSON values over MCP, strings from a
query string), so a bad value is refused with one text on every transport. The official registry keeps
one typed input struct per operation whose tags drive validation and its OpenAPI document: same idea.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from mcplookup_mcp.core import validation
from mcplookup_mcp.core.errors import InvalidInput

# text: searched-for text; domain: a host name; keywords: a list of capability keywords (a query string
# gives them repeated or comma-separated); choice: one of `choices`; category: one category word; flag:
# true or false; whole: a whole number within bounds; token: an opaque string the service reads (a cursor).
Kind = Literal["text", "domain", "keywords", "choice", "category", "flag", "whole", "token"]


@dataclass(frozen=True)
class Arg:
    name: str
    kind: Kind
    description: str
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    # The name the REST route documents, when it is not `name` (q for query), and further names it takes.
    rest_name: str | None = None
    rest_aliases: tuple[str, ...] = ()
    # For a whole number: a value to suggest, and what leaving the argument out means.
    example: int | None = None
    absent: str | None = None

    @property
    def query_name(self) -> str:
        return self.rest_name or self.name

    @property
    def is_list(self) -> bool:
        return self.kind == "keywords"

    def schema(self) -> dict[str, Any]:
        """The argument's JSON schema: type, bounds, choices, default and description."""
        schema: dict[str, Any]
        if self.kind == "keywords":
            schema = {
                "type": "array",
                "items": {"type": "string", "maxLength": validation.MAX_CAPABILITY},
                "maxItems": validation.MAX_CAPABILITIES,
            }
        elif self.kind == "choice":
            schema = {"type": "string", "enum": list(self.choices)}
        elif self.kind == "flag":
            schema = {"type": "boolean"}
        elif self.kind == "whole":
            schema = {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        else:
            schema = {"type": "string"}
            if self.max_length is not None:
                schema["maxLength"] = self.max_length
        if self.default is not None:
            schema["default"] = self.default
        schema["description"] = self.description
        return schema

    def check(self, value: object) -> Any:
        """The value as the service uses it (the default when left out), or the argument's refusal."""
        if self.kind == "text":
            return validation.text(value, self.name, self.max_length or validation.MAX_QUERY) or self.default
        if self.kind == "domain":
            return validation.domain(value, self.name) if value else self.default
        if self.kind == "keywords":
            return validation.capabilities(value, self.name)
        if self.kind == "choice":
            return validation.choice(value, self.name, self.choices, self.default)
        if self.kind == "category":
            return validation.category(value, self.name)
        if self.kind == "flag":
            # JSON's 0 and 1 as the booleans they stand for, as a query string's "0" and "1" are.
            if type(value) is int and value in (0, 1):
                value = bool(value)
            return validation.flag(value, self.name, bool(self.default))
        if self.kind == "whole":
            assert self.minimum is not None and self.maximum is not None
            return validation.whole(
                value, self.name, self.minimum, self.maximum, self.default, self.example, self.absent
            )
        return value if value != "" else self.default


@dataclass(frozen=True)
class Arguments:
    """An operation's declared arguments, in the order they are documented."""

    args: tuple[Arg, ...]

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(arg.name for arg in self.args)

    @cached_property
    def _name_set(self) -> frozenset[str]:
        return frozenset(self.names)

    def __getitem__(self, name: str) -> Arg:
        for arg in self.args:
            if arg.name == name:
                return arg
        raise KeyError(name)

    def check(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Every declared argument's checked value (its default when left out); an undeclared one, or
        the first bad value, is refused."""
        if not data.keys() <= self._name_set:
            validation.reject_unknown(data, self.names)
        return {arg.name: arg.check(data.get(arg.name)) for arg in self.args}

    def input_schema(self) -> dict[str, Any]:
        """The arguments as one JSON schema object (no argument is required)."""
        return {
            "type": "object",
            "properties": {arg.name: arg.schema() for arg in self.args},
            "additionalProperties": False,
        }

    def query_names(self) -> dict[str, str]:
        """Every name the REST route takes -> the argument it stands for."""
        names: dict[str, str] = {}
        for arg in self.args:
            for spelling in (arg.name, arg.query_name, *arg.rest_aliases):
                names[spelling] = arg.name
        return names

    def from_query(self, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """A query string's name=value pairs as the arguments they stand for, still unchecked: a list
        argument may be repeated or comma-separated; any other is given once. Unknown names are refused."""
        names = self.query_names()
        given: dict[str, list[str]] = {}
        for key, value in pairs:
            given.setdefault(key, []).append(value)
        data: dict[str, Any] = {}
        for key, values in given.items():
            name = names.get(key)
            if name is None:
                raise InvalidInput(
                    f"unknown query parameter {key!r}; accepted: {', '.join(names)}", field=key
                )
            if self[name].is_list:
                data[name] = [part for value in values for part in value.split(",") if part.strip()]
            elif len(values) > 1:
                raise InvalidInput(f"query parameter {key!r} was given more than once", field=key)
            else:
                data[name] = values[0]
        return data
