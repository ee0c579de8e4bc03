"""The package's folders are its layers, and imports only go down them (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from source_support import imported_modules

PACKAGE = Path(__file__).resolve().parents[1] / "mcplookup_mcp"
# Lower numbers sit lower. store and probe are side by side: neither imports the other.
RANK = {"core": 0, "store": 1, "probe": 1, "services": 2, "transports": 3}
TOP = 4  # app.py, cli.py, __main__.py: they put the layers together


def layer_of(module: str) -> str:
    """The layer of a dotted module below mcplookup_mcp ('' for the package itself)."""
    first = module.split(".", 1)[0]
    return first if first in RANK else ""


def rank(module: str) -> int:
    layer = layer_of(module)
    return RANK[layer] if layer else (0 if module in ("", "__init__") else TOP)


def imports(path: Path) -> set[str]:
    """Every module of the package this file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mcplookup_mcp":
            base = node.module.removeprefix("mcplookup_mcp").lstrip(".")
            for alias in node.names:
                # `from mcplookup_mcp.core import errors` imports core.errors; `import __version__` the package
                candidate = f"{base}.{alias.name}".lstrip(".")
                found.add(
                    candidate
                    if (PACKAGE / candidate.replace(".", "/")).exists()
                    or (PACKAGE / (candidate.replace(".", "/") + ".py")).exists()
                    else base
                )
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("mcplookup_mcp.")
                for a in node.names
                if a.name.startswith("mcplookup_mcp.")
            }
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_only_down_the_layers(path: Path) -> None:
    here = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    wrong = [
        there
        for there in sorted(imports(path))
        if rank(there) > rank(here) or (rank(there) == rank(here) == 1 and layer_of(there) != layer_of(here))
    ]
    assert not wrong, f"{here} ({layer_of(here) or 'top'}) imports from above or beside it: {wrong}"


# Drivers only in store/, the network only in probe/; app.py and cli.py, which put the layers together,
# may open what they hand down.
CONFINED = {"psycopg": "store", "psycopg_pool": "store", "redis": "store", "httpx": "probe"}


def outside_imports(path: Path) -> set[str]:
    """Every top-level package other than this one that the file imports, at the top or inside a function."""
    return imported_modules(path) - {"mcplookup_mcp"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_drivers_stay_in_the_store_and_the_network_in_the_probe(path: Path) -> None:
    here = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    if not layer_of(here):
        return
    wrong = sorted(
        f"{package} (belongs in {layer}/)"
        for package in outside_imports(path)
        if (layer := CONFINED.get(package)) and layer != layer_of(here)
    )
    assert not wrong, f"{here} imports {wrong}"


def test_every_layer_states_its_rule_and_the_architecture_lists_it() -> None:
    architecture = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for layer in RANK:
        rule = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text(encoding="utf-8")))
        assert rule, f"{layer}/__init__.py has no one-line rule"
        assert re.search(rf"`{layer}/`", architecture), f"docs/architecture.md does not describe {layer}/"
    assert sorted(p.name for p in PACKAGE.iterdir() if p.suffix == ".py") == [
        "__init__.py",
        "__main__.py",
        "app.py",
        "cli.py",
    ], "a module at the top that belongs in a layer"
