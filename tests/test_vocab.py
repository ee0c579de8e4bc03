"""The SQL's words are core/vocab.py's: the migrations' CHECK lists, the queries' status and transport
literals, the "up" and measured sets, and the filler and action words of the ranked search."""

from __future__ import annotations

import re

import psycopg

from mcplookup_mcp.core import vocab
from mcplookup_mcp.core.vocab import HealthStatus, ListingStatus, Source, Transport
from mcplookup_mcp.store.sqlfiles import migrations, sql_dir

_LITERAL = re.compile(r"'([^']*)'")


def _literals(text: str) -> set[str]:
    return set(_LITERAL.findall(text))


def _queries(name: str) -> str:
    return (sql_dir() / "queries" / name).read_text(encoding="utf-8")


def _all_sql() -> str:
    texts = [
        e.read_text(encoding="utf-8") for e in (sql_dir() / "queries").iterdir() if e.name.endswith(".sql")
    ]
    return "\n".join(texts + [text for _, text in migrations()])


def test_the_check_constraints_allow_the_vocabularies() -> None:
    checks: dict[tuple[str, str], set[str]] = {}
    for _, text in migrations():
        for table, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\n\);", text, flags=re.S):
            for column, values in re.findall(r"CHECK \((\w+) IN \(([^)]*)\)\)", body, flags=re.S):
                checks[(table, column)] = _literals(values)
    assert checks[("mcp_servers", "transport")] == set(Transport)
    assert checks[("mcp_servers", "source")] == set(Source)
    assert checks[("mcp_servers", "status")] == set(ListingStatus)
    assert checks[("health_checks", "status")] == set(vocab.PROBE_STATUSES)
    assert checks[("domain_verifications", "status")] == set(vocab.ClaimStatus)


def test_every_health_status_the_sql_names_is_one() -> None:
    text = _all_sql()
    named = set(re.findall(r"health_status\s*(?:=|<>)\s*'([^']*)'", text))
    for case in re.findall(r"CASE \w+\.health_status(.*?)END", text, flags=re.S):
        named |= set(re.findall(r"WHEN '([^']*)'", case))
    assert named and named <= set(HealthStatus), named - set(HealthStatus)
    # Every list of statuses is the up set (uptime, healthy_servers_percentage) or the measured set
    # (latency averages), as probe/health.py and services/monitor.py count them.
    lists = [
        _literals(v) for v in re.findall(r"status IN \(([^)]*)\)", text) if _literals(v) <= set(HealthStatus)
    ]
    health_lists = [found for found in lists if found & {"healthy", "unreachable"}]
    up = {frozenset(found) for found in health_lists if len(found) < len(vocab.PROBE_STATUSES)}
    assert up == {vocab.UP_STATUSES, vocab.MEASURED_STATUSES}


def test_the_probed_rule_names_the_remote_transports() -> None:
    text = _all_sql()
    remote = re.findall(r"transport IN \(([^)]*)\)", text.split("FUNCTION mcp_server_probed", 1)[1])[0]
    assert _literals(remote) == set(vocab.REMOTE_TRANSPORTS)
    assert "'stdio'" not in remote


def test_the_ranked_search_has_the_filler_and_action_words_of_the_vocabulary() -> None:
    ranked = _queries("discovery.sql")

    def words_before(name: str) -> set[str]:
        found = re.search(r"x\.w = ANY \('\{([^}]*)\}'::text\[\]\) AS " + name, ranked)
        assert found, name
        return {w.strip() for w in found.group(1).split(",")}

    assert words_before("filler") == vocab.FILLER_STEMS
    assert words_before("action") == vocab.ACTION_STEMS


def test_typed_filler_stems_into_the_filler(pg_admin_url: str) -> None:
    """A word never taken for a misspelling is filler as typed: PostgreSQL stems it into the filler, or
    drops it as a stop word."""
    with psycopg.connect(pg_admin_url) as conn:
        stems = {
            word: conn.execute("SELECT tsvector_to_array(to_tsvector('english', %s))", (word,)).fetchone()
            for word in sorted(vocab.TYPED_FILLER)
        }
    assert {w: s for w, s in stems.items() if s and not set(s[0]) <= vocab.FILLER_STEMS} == {}
