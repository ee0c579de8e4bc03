"""`mcplookup` as a newcomer meets it: help that names every default, a readable discovery table, and
import naming the database it writes to, the embedded one a running `serve` shares included."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from psycopg.conninfo import conninfo_to_dict
from registry_schema import check_answer
from serve_support import cli, cli_env, database_url, start_serve, stop_serve, wait_ready

from mcplookup_mcp.cli import DISCOVER_COLUMNS, build_parser

ENTRIES = [
    {
        "name": "io.github.cli/mailer",
        "description": "Send and read email from the shell",
        "version": "1.0.0",
    },
    {"name": "io.github.cli/lights", "description": "Switch the lights at home", "version": "1.0.0"},
]


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_every_command_has_a_description_and_every_option_its_default() -> None:
    commands = _subcommands(build_parser())
    assert set(commands) >= {"serve", "migrate", "import", "discover", "dev-dns"}
    for name, parser in commands.items():
        assert parser.description, name
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.dest} has no help"
            if action.option_strings:
                # The help as printed: the formatter adds literal defaults, env-derived ones are written.
                shown = parser._get_formatter()._expand_help(action)
                assert "(default: " in shown, f"{name} {action.option_strings[0]}: {shown!r}"
                assert "None" not in shown, f"{name} {action.option_strings[0]}: {shown!r}"


def test_help_runs_as_a_command() -> None:
    done = cli("import", "--help", env=cli_env())
    assert done.returncode == 0, done.stderr
    assert "--data-dir" in done.stdout and "(default: MCPLOOKUP_DATA_DIR" in done.stdout
    assert "mcplookup serve" in done.stdout  # says which database it writes to by default


@pytest.mark.slow  # runs the command line as child processes
def test_discover_prints_a_table_and_json_with_the_flag(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(ENTRIES))
    env = cli_env(DATABASE_URL=database_url(db_url))
    assert cli("import", str(path), env=env).returncode == 0
    table = cli("discover", "send", "email", env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == " ".join(DISCOVER_COLUMNS).split()
    mailer = next(line for line in lines if line.startswith("io.github.cli/mailer"))
    # verified, health, then why it matched: the stored fields and the query terms found in them.
    assert mailer.split()[1:3] == ["no", "unknown"]
    assert "description: " in mailer and "email" in mailer
    assert not any(line.startswith("io.github.cli/lights") for line in lines)
    assert not table.stdout.lstrip().startswith("{")

    answer = cli("discover", "--json", "send", "email", env=env)
    assert answer.returncode == 0, answer.stderr
    found = json.loads(answer.stdout)
    assert [s["name"] for s in found["servers"]] == ["io.github.cli/mailer"]
    assert "email" in {t for terms in found["servers"][0]["match"]["matched"].values() for t in terms}

    nothing = cli("discover", "quantum", "teleportation", env=env)
    assert nothing.returncode == 0 and "mcplookup import FILE" in nothing.stdout


def test_import_names_the_database_never_the_password(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(ENTRIES[0]))
    parts = conninfo_to_dict(db_url)
    # The test server trusts loopback, so a password in the URL is sent and ignored: it must not be shown.
    done = cli("import", str(path), env=cli_env(DATABASE_URL=database_url(db_url, password="s3cr3t-pw")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("created 1, updated 0, unchanged 0, skipped 0")
    assert f"database {parts['dbname']}" in done.stderr
    assert f"{parts.get('host', '')}:{parts.get('port', '5432')}" in done.stderr
    assert "s3cr3t-pw" not in done.stderr + done.stdout

    # A skipped entry is named by its place in the file and what it holds.
    empty = {"name": "", "description": "", "version": "", "repository": {"url": "", "source": ""}}
    path.write_text(json.dumps([ENTRIES[0], empty]))
    again = cli("import", str(path), env=cli_env(DATABASE_URL=database_url(db_url)))
    assert again.stdout.splitlines() == [
        "created 0, updated 0, unchanged 1, skipped 1, fixed 0",
        "  skipped entry 1 (an empty entry: name, description, version, repository all empty): it has no "
        "name (the name field is missing or empty), and entries are keyed by name",
    ]
    path.write_text(json.dumps(ENTRIES[0]))

    refused = cli(
        "import", str(path), "--data-dir", str(tmp_path), env=cli_env(DATABASE_URL=database_url(db_url))
    )
    assert refused.returncode == 2 and "DATABASE_URL is set" in refused.stderr

    unreachable = cli_env(DATABASE_URL=f"postgresql://postgres:s3cr3t-pw@127.0.0.1:{free_port()}/nowhere")
    failed = cli("import", str(path), env=unreachable)
    assert failed.returncode == 1 and "the database did not answer" in failed.stderr
    assert "Traceback" not in failed.stderr and "s3cr3t-pw" not in failed.stderr


@pytest.mark.slow
def test_import_reaches_the_embedded_database_a_running_serve_uses(tmp_path: Path, pg_data_dir: Path) -> None:
    """The README's order: `serve` runs on a data directory, `import` into it, the server lists the
    entries at once, and the import's exit leaves the shared PostgreSQL running for the server."""
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(ENTRIES))
    data_dir = pg_data_dir / "data"
    alone = cli("import", str(path), "--data-dir", str(data_dir), env=cli_env())
    assert alone.returncode == 0, alone.stderr
    assert f"embedded PostgreSQL in {data_dir / 'pgdata'}" in alone.stderr
    assert "started for this command" in alone.stderr

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_serve(data_dir, port)
    try:
        wait_ready(proc, base)
        (tmp_path / "more.json").write_text(
            json.dumps([{"name": "io.github.cli/kube", "description": "Run kubernetes", "version": "1"}])
        )
        # MCPLOOKUP_DATA_DIR, as the README's walkthrough sets it for serve, reaches the same database.
        joined = cli("import", str(tmp_path / "more.json"), env=cli_env(MCPLOOKUP_DATA_DIR=str(data_dir)))
        assert joined.returncode == 0, joined.stderr
        assert "already running: shared with the other mcplookup processes on this data directory" in (
            joined.stderr
        )
        assert "a running serve included" in joined.stderr
        listed = httpx.get(f"{base}/v0.1/servers", params={"search": "cli/kube"}, timeout=10).json()
        check_answer("/v0.1/servers", 200, listed)
        assert [s["server"]["name"] for s in listed["servers"]] == ["io.github.cli/kube"]
        found = httpx.get(f"{base}/api/v1/discover", params={"q": "lights at home"}, timeout=10).json()
        assert "io.github.cli/lights" in [s["name"] for s in found["servers"]]
        assert httpx.get(f"{base}/ready", timeout=10).status_code == 200
    finally:
        stop_serve(proc)
