"""A request asked again is planned once: the same arguments give the same plan, other ones their own."""

from __future__ import annotations

import pytest

from mcplookup_mcp.core.errors import InvalidInput
from mcplookup_mcp.services.discovery import PLAN_ENTRIES, DiscoveryService


def _service() -> DiscoveryService:
    service = DiscoveryService.__new__(DiscoveryService)
    service._cursor_key = b"k" * 32
    service._plans = {}
    return service


def test_same_arguments_same_plan_others_their_own() -> None:
    service = _service()
    first = service.planned({"query": "send email", "limit": 5, "capabilities": ["email"]})
    assert service.planned({"capabilities": ["email"], "limit": 5, "query": "send email"}) is first
    assert first == service.plan({"query": "send email", "limit": 5, "capabilities": ["email"]})
    # 1 and True are equal in Python, yet different arguments.
    assert service.planned({"query": "send email", "limit": 1}).limit == 1
    with pytest.raises(InvalidInput):
        service.planned({"query": "send email", "limit": True})
    assert service.planned({"query": "send email", "capabilities": ["files"]}).params["caps_all"] == ["files"]


def test_refusals_are_not_kept_and_the_memory_is_bounded() -> None:
    service = _service()
    for _ in range(2):
        with pytest.raises(InvalidInput):
            service.planned({"query": "x", "sort": "sideways"})
    assert service._plans == {}
    for i in range(PLAN_ENTRIES + 5):
        service.planned({"query": f"question {i}"})
    assert len(service._plans) == PLAN_ENTRIES
    # Arguments that are not plain values are planned every time, never kept.
    service._plans.clear()
    with pytest.raises(InvalidInput):
        service.planned({"query": {"nested": 1}})
    assert service._plans == {}
