"""The REST API against its own OpenAPI document, with requests generated from the document itself.

Every operation gets a bounded, derandomised run of generated requests (valid and not) against the real
app under uvicorn: no answer is a 5xx, and every answer is one the document describes (status code,
content type, body schema).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from conftest import LiveServer
from dnsserver import ThreadedDnsServer
from hypothesis import HealthCheck, Phase, given
from registration_support import verified_listing
from registry_schema import check_answer
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 20

FUZZ_SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _fuzz(
    strategy: Any,
    base_url: str,
    label: str,
    sent: dict[str, int],
    statuses: dict[str, set[int]] | None = None,
) -> None:
    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        sent[label] = sent.get(label, 0) + 1
        response = case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=20)
        if case.path.startswith(("/v0.1/", "/v0/")):
            # Beside our own document, the official registry's: schema and OpenAPI excerpt.
            check_answer(case.path, response.status_code, response.json())
        if statuses is not None:
            statuses.setdefault(case.operation.label, set()).add(response.status_code)

    run()


@pytest.fixture
def api(live: LiveServer) -> Iterator[tuple[LiveServer, schemathesis.BaseSchema]]:
    yield live, schemathesis.openapi.from_url(f"{live.base_url}/api/v1/openapi.json")


@pytest.mark.slow  # fuzzes every documented operation with generated requests
def test_every_operation_answers_as_documented(api: tuple[LiveServer, schemathesis.BaseSchema]) -> None:
    live, schema = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []
    sent: dict[str, int] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.label} ({mode.value})"

            try:
                _fuzz(operation.as_strategy(generation_mode=mode), live.base_url, label, sent)
            except hypothesis.errors.Unsatisfiable:
                # No input breaks a schema-less path of free text (/health, /servers/{name}): nothing to send.
                if mode is GenerationMode.POSITIVE:
                    failures.append(f"{label}: no request could be generated")
            except Exception as exc:
                failures.append(f"{label}: {exc}")
    assert not failures, "\n\n".join(failures)
    # Each operation was really exercised (not skipped as unsatisfiable).
    assert all(sent.get(f"{op.label} (positive)", 0) >= 1 for op in operations), sent
    assert sum(sent.values()) >= EXAMPLES * len(operations), sent


# Destructive owner calls run last, so the calls before them meet a listing and a key that still exist.
_LAST = [
    "DELETE /api/v1/servers/{name}",
    "POST /api/v1/domains/{domain}/keys/rotate",
    "POST /api/v1/domains/{domain}/keys/revoke",
]


def test_operations_on_a_real_listing_with_its_key(
    api: tuple[LiveServer, schemathesis.BaseSchema], dns: ThreadedDnsServer
) -> None:
    """Generated paths almost never name a listing: here every path names a verified one and the owner's
    key goes along, so generated bodies and queries reach the update and key rules, not just 404 and 401."""
    live, schema = api
    claim, api_key = verified_listing(live.base_url, dns)
    known = {"name": claim["name"], "domain": claim["domain"], "version": "latest"}
    auth = {"Authorization": f"Bearer {api_key}"}
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()),
        key=lambda op: _LAST.index(op.label) if op.label in _LAST else -1,
    )
    failures: list[str] = []
    sent: dict[str, int] = {}
    statuses: dict[str, set[int]] = {}
    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        if not names:
            continue
        label = f"{operation.label} (known)"
        strategy = operation.as_strategy(path_parameters={n: known[n] for n in names}, headers=auth)

        try:
            _fuzz(strategy, live.base_url, label, sent, statuses)
        except Exception as exc:
            failures.append(f"{label}: {exc}")
    assert not failures, "\n\n".join(failures)
    # The listing was really reached: read, changed and deleted, not merely refused.
    assert 200 in statuses["GET /api/v1/servers/{name}"], statuses
    assert 200 in statuses["PATCH /api/v1/servers/{name}"], statuses
    assert 200 in statuses["DELETE /api/v1/servers/{name}"], statuses


@pytest.mark.slow  # stateful fuzzing: chains of register, verify and get
def test_the_registration_flow_follows_the_documents_links(
    api: tuple[LiveServer, schemathesis.BaseSchema], dns: ThreadedDnsServer
) -> None:
    """Stateful: register -> verify -> get server, chained by the document's links. Each claim's TXT record
    is published on the tests' DNS server as soon as it is answered, so a linked verify can succeed."""
    live, schema = api
    seen: dict[str, int] = {}
    claims = itertools.count()

    @schema.hook("map_body")
    def claimable(context: Any, body: Any) -> Any:
        # Generated domains are almost never ones an endpoint can sit under: give each registration its
        # own domain and an endpoint on it, and keep the other generated fields.
        if context.operation.label != "POST /api/v1/register" or not isinstance(body, dict):
            return body
        domain = f"d{next(claims)}.example.test"
        return body | {"domain": domain, "endpoint": f"https://mcp.{domain}/mcp"}

    class Flow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": live.base_url, "timeout": 20}

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            key = f"{case.operation.label} {response.status_code}"
            seen[key] = seen.get(key, 0) + 1
            if case.operation.label == "POST /api/v1/register" and response.status_code == 202:
                record = response.json()["dns_record"]
                dns.set_txt(record["name"], record["value"])

        def validate_response(
            self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Flow.run(
        settings=hypothesis.settings(
            max_examples=25,
            stateful_step_count=6,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    # The links were followed to the end: claims were verified and their listings read back.
    assert seen.get("POST /api/v1/register 202", 0) >= 3, seen
    assert seen.get("POST /api/v1/verify 200", 0) >= 1, seen
    assert seen.get("GET /api/v1/servers/{name} 200", 0) >= 1, seen
