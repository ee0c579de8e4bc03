"""Readers for the shipped deployment files (Dockerfile, compose.yaml, env files, k8s overlays), shared by
the tests that check them."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REQUIRED = os.environ.get("MCPLOOKUP_REQUIRE_SERVICES") == "1"


def tool(name: str) -> str:
    """A linter from the test extras (installed next to this Python) or from Debian."""
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not found:
        message = f"{name} is not installed (pip install -e '.[test]', or apt-get install {name})"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return str(found)


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as compose's env_file and kustomize's envs read them (no quotes, no expansion)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not KEY=VALUE"
        values[key.strip()] = value
    return values


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())  # type: ignore[no-any-return]


def render_overlay(name: str) -> list[dict[str, Any]]:
    result = run(tool("kubectl"), "kustomize", str(ROOT / "k8s" / "overlays" / name))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def dockerfile_instructions(text: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    source = (ROOT / "Dockerfile").read_text() if text is None else text
    joined = source.replace("\\\n", " ")
    out: list[tuple[str, str]] = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        word, _, rest = stripped.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


def image_command() -> tuple[list[str], list[str]]:
    """The final stage's ENTRYPOINT and CMD, both in exec form."""
    stage = dict(final_stage())
    return exec_form(stage["ENTRYPOINT"]), exec_form(stage["CMD"])


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in final_stage():
        if word == "ENV":
            for part in shlex.split(rest):
                key, _, value = part.partition("=")
                env[key] = value
    return env


def healthcheck() -> tuple[dict[str, str], list[str]]:
    """The HEALTHCHECK's options and its exec-form command."""
    (rest,) = [rest for word, rest in final_stage() if word == "HEALTHCHECK"]
    options_text, sep, command = rest.partition("CMD ")
    assert sep, "HEALTHCHECK has no CMD"
    options = dict(opt.lstrip("-").split("=", 1) for opt in options_text.split())
    return options, exec_form(command)
