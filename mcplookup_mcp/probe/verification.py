"""Check a claim's TXT record: one lookup, one outcome a person or a model can act on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import dns.asyncresolver

from mcplookup_mcp.probe.dns_resolver import DnsLookupError, DnsTimeout, NoRecord, NoSuchDomain, lookup_txt

RECORD_PREFIX = "_mcp-verify."
VALUE_PREFIX = "mcp-verify="
_MAX_FOUND = 5


class Outcome(StrEnum):
    VERIFIED = "verified"
    MISSING = "pending"
    WRONG_VALUE = "wrong_value"
    DNS_ERROR = "dns_error"


@dataclass(frozen=True)
class CheckResult:
    outcome: Outcome
    found: tuple[str, ...] = ()
    detail: str = ""


def record_name(domain: str) -> str:
    return RECORD_PREFIX + domain


def record_value(token: str) -> str:
    return VALUE_PREFIX + token


async def check_claim_record(
    resolver: dns.asyncresolver.Resolver, domain: str, token: str, *, mock: bool = False
) -> CheckResult:
    """The check verification and re-verification use. `mock` (MCPLOOKUP_MOCK_DNS_VERIFICATION, never in
    production) accepts the claim without a lookup."""
    if mock:
        return CheckResult(
            Outcome.VERIFIED, found=(record_value(token),), detail="accepted without DNS (mock)"
        )
    return await check_record(resolver, domain, token)


async def check_record(resolver: dns.asyncresolver.Resolver, domain: str, token: str) -> CheckResult:
    name = record_name(domain)
    expected = record_value(token)
    try:
        values = await lookup_txt(resolver, name)
    except (NoSuchDomain, NoRecord):
        return CheckResult(Outcome.MISSING, detail=f"no TXT record at {name}")
    except DnsTimeout:
        return CheckResult(Outcome.DNS_ERROR, detail=f"the DNS lookup of {name} timed out")
    except DnsLookupError as exc:
        return CheckResult(
            Outcome.DNS_ERROR, detail=f"the DNS lookup of {name} failed ({type(exc).__name__})"
        )
    if any(value.strip() == expected for value in values):
        return CheckResult(Outcome.VERIFIED, found=(expected,))
    # Other TXT values at the name are public DNS data; show a few, capped, so the owner can see the typo.
    found = tuple(value[:120] for value in values[:_MAX_FOUND])
    if not any(value.startswith(VALUE_PREFIX) for value in values):
        return CheckResult(Outcome.MISSING, found=found, detail=f"no mcp-verify= value at {name}")
    return CheckResult(Outcome.WRONG_VALUE, found=found, detail=f"{name} holds a different mcp-verify value")
