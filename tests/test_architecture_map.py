"""docs/architecture.md lists every module of the package once, and nothing that is not one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mcplookup_mcp"
ROW = re.compile(r"^\| `([A-Za-z0-9_/]+\.py)` \|", re.MULTILINE)


def listed_modules() -> list[str]:
    """The module column of the "Modules" section, in the order written."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = re.search(r"^## Modules\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert section, 'docs/architecture.md has no "## Modules" section'
    return ROW.findall(section.group(1))


def package_modules() -> set[str]:
    # `__init__.py` files state their layer's rule (tests/test_layout.py checks them); the rest are listed.
    return {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    }


def test_every_module_is_listed_once_and_every_listed_one_exists() -> None:
    listed = listed_modules()
    modules = package_modules()
    missing = sorted(modules - set(listed))
    assert not missing, (
        "docs/architecture.md, section Modules, does not list "
        + ", ".join(f"`{m}`" for m in missing)
        + ": add a row `| `<module>` | what it is |` for each"
    )
    gone = sorted(set(listed) - modules)
    assert not gone, f"docs/architecture.md, section Modules, lists modules that do not exist: {gone}"
    twice = sorted({m for m in listed if listed.count(m) > 1})
    assert not twice, f"docs/architecture.md, section Modules, lists these more than once: {twice}"
    ordered = sorted(listed, key=lambda m: (m.count("/") > 0, m))
    misplaced = next((m for m, o in zip(listed, ordered, strict=True) if m != o), None)
    assert misplaced is None, (
        f"keep the rows in path order (top-level modules first): {misplaced} is out of place"
    )
