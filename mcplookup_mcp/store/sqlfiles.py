"""Named SQL queries, loaded from the package's `sql/queries/*.sql` files.

Each query starts with a `-- name --` header line followed by a one-line `-- description`
comment; placeholders are psycopg's `%(param)s`. Only the repository names queries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from importlib.abc import Traversable

_HEADER = re.compile(r"^-- ([a-z0-9_]+) --\s*$", re.MULTILINE)


def sql_dir() -> Traversable:
    return resources.files("mcplookup_mcp") / "sql"


_INCLUDE = re.compile(r"^[ \t]*-- include (_[a-z0-9_]+)[ \t]*$", re.MULTILINE)


def _blocks(text: str, source: str) -> dict[str, str]:
    """The file's named blocks (queries and fragments), each without its header and description."""
    parts = _HEADER.split(text)
    blocks: dict[str, str] = {}
    # parts = [preamble, name1, body1, name2, body2, ...]
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = body.strip().splitlines()
        if not lines or not lines[0].startswith("-- "):
            raise ValueError(f"{source}: query {name!r} needs a one-line '-- description' after its header")
        query = "\n".join(lines[1:]).strip()
        if not query:
            raise ValueError(f"{source}: query {name!r} is empty")
        if name in blocks:
            raise ValueError(f"{source}: query {name!r} is defined twice")
        blocks[name] = query
    return blocks


def parse_queries(text: str, source: str, shared: Mapping[str, str] | None = None) -> dict[str, str]:
    """The file's named queries. A name starting with `_` is a fragment, not a query: a line
    `-- include _name` in a query stands for its text, so a block written once serves every query that
    needs it. `shared`: the fragments of every file (`queries` passes them), so that one shape, such as
    a server's columns, is written once for all the files."""
    queries = _blocks(text, source)
    fragments = dict(shared or {}) | {
        name: queries.pop(name) for name in list(queries) if name.startswith("_")
    }

    def include(found: re.Match[str]) -> str:
        if found.group(1) not in fragments:
            raise ValueError(f"{source}: no fragment {found.group(1)!r} to include")
        return fragments[found.group(1)]

    return {name: _INCLUDE.sub(include, query) for name, query in queries.items()}


@cache
def queries() -> dict[str, str]:
    folder = sql_dir() / "queries"
    files = [
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".sql")
    ]
    shared: dict[str, str] = {}
    for source, text in files:
        for name, fragment in _blocks(text, source).items():
            if name.startswith("_"):
                if name in shared:
                    raise ValueError(f"{source}: fragment {name!r} is already defined in another file")
                shared[name] = fragment
    merged: dict[str, str] = {}
    for source, text in files:
        for name, query in parse_queries(text, source, shared).items():
            if name in merged:
                raise ValueError(f"{source}: query {name!r} is already defined in another file")
            merged[name] = query
    return merged


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def positional(query: str) -> tuple[bytes, tuple[str, ...]]:
    """`query` in PostgreSQL's own placeholders ($1, $2, ...), with the parameter each one names."""
    names: list[str] = []

    def placeholder(found: re.Match[str]) -> str:
        name = found.group(1)
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(placeholder, query).encode(), tuple(names)


@cache
def positional_queries() -> dict[str, tuple[bytes, tuple[str, ...]]]:
    """Every named query converted once: psycopg converts `%(name)s` again at each execution of a
    statement over 4 kB (the ranked search is 12 kB), a quarter of a millisecond each time."""
    return {name: positional(query) for name, query in queries().items()}


def migrations() -> list[tuple[str, str]]:
    """(version, sql) pairs in order; the version is the file name without `.sql`."""
    folder = sql_dir() / "migrations"
    found = sorted((e.name, e) for e in folder.iterdir() if e.name.endswith(".sql"))
    result = []
    for file_name, entry in found:
        if not re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", file_name):
            raise ValueError(f"migration file {file_name!r} must be named NNNN_description.sql")
        result.append((file_name.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    return result
