"""MCPLOOKUP_* names: one declared set (settings.KNOWN_VARIABLES), every name the project uses is in it,
and any other one in the environment stops the start with the closest known name."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mcplookup_mcp.core.settings import KNOWN_VARIABLES, ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mcplookup_mcp"
LITERAL = re.compile(r"[\"'](MCPLOOKUP_[A-Z0-9_]*[A-Z0-9])[\"']")
NAME = re.compile(r"\bMCPLOOKUP_[A-Z0-9_]*[A-Z0-9]\b")
# Where the project sets or documents variables for a running server.
ELSEWHERE = [
    # this file names unknown ones on purpose
    *sorted(p for p in (ROOT / "tests").glob("*.py") if p.name != Path(__file__).name),
    *sorted((ROOT / "bench").glob("*.py")),
    *sorted((ROOT / "deploy").glob("*.env")),
    *sorted((ROOT / "k8s").rglob("*.y*ml")),
    *sorted((ROOT / "k8s").rglob("*.env")),
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "README.md",
    ROOT / "compose.yaml",
    ROOT / ".env.example",
    ROOT / "Dockerfile",
    ROOT / ".github" / "workflows" / "ci.yml",
    ROOT / ".ci" / "run",
]


def test_every_mcplookup_literal_in_the_package_is_a_known_name() -> None:
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for name in LITERAL.findall(path.read_text()):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert len(found) >= 30, "the scan no longer finds the settings' names"
    unknown = {name: sorted(paths) for name, paths in found.items() if name not in KNOWN_VARIABLES}
    assert unknown == {}, "add these to settings.KNOWN_VARIABLES (or stop reading them)"


def test_every_name_the_project_sets_or_documents_is_known() -> None:
    found: dict[str, set[str]] = {}
    for path in ELSEWHERE:
        if not path.exists():
            continue
        # Examples of the refusal itself name an unknown variable on purpose.
        text = re.sub(r"`[^`]*is\s+not\s+a\s+setting\s+MCPLookup\s+reads[^`]*`", "", path.read_text())
        for name in NAME.findall(text):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    unknown = {
        name: sorted(paths)
        for name, paths in found.items()
        if name not in KNOWN_VARIABLES and not name.startswith("MCPLOOKUP_TEST_")
    }
    assert unknown == {}


def test_a_misspelt_or_retired_name_is_refused_with_the_closest_known_one() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"MCPLOOKUP_RATE_LIMIT_ENABLED": "false"})
    assert str(caught.value) == (
        "MCPLOOKUP_RATE_LIMIT_ENABLED is not a setting MCPLookup reads: "
        "did you mean MCPLOOKUP_RATE_LIMIT_PER_MINUTE?"
    )
    with pytest.raises(ConfigError, match="did you mean MCPLOOKUP_DB_POOL_SIZE"):
        load_settings({"MCPLOOKUP_DB_POOLSIZE": "5"})
    with pytest.raises(ConfigError, match=r"MCPLOOKUP_A is not .*; also unknown: MCPLOOKUP_B|MCPLOOKUP_A"):
        load_settings({"MCPLOOKUP_B": "1", "MCPLOOKUP_A": "1"})


def test_the_suites_own_names_start_a_server() -> None:
    settings = load_settings(
        {
            "MCPLOOKUP_REQUIRE_SERVICES": "1",
            "MCPLOOKUP_TEST_DATABASE_URL": "postgresql://postgres@127.0.0.1/postgres",
            "MCPLOOKUP_TEST_SOMETHING_NEW": "x",
            "MCPLOOKUP_ENV": "test",
        }
    )
    assert settings.env == "test"


def test_the_command_line_refuses_an_unknown_name_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mcplookup_mcp", "migrate"],
        env={"MCPLOOKUP_SCHEDULAR": "false", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "mcplookup: configuration error: MCPLOOKUP_SCHEDULAR is not a setting MCPLookup reads: "
        "did you mean MCPLOOKUP_SCHEDULER?"
    )
