"""The suite's own rules: shared helpers live in support modules, never in a test module."""

from __future__ import annotations

from pathlib import Path

import pytest
from source_support import imported_modules

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("path", sorted(TESTS.glob("*.py")), ids=lambda p: p.name)
def test_no_module_imports_a_test_module(path: Path) -> None:
    # A test module imported by another runs its module-level set-up twice and ties the two together;
    # what both need goes in a support module (registration_support.py, listing_support.py, ...).
    wrong = sorted(
        m for m in imported_modules(path) if m.startswith("test_") and (TESTS / f"{m}.py").exists()
    )
    assert not wrong, f"{path.name} imports the test modules {wrong}: move what it uses into a support module"
