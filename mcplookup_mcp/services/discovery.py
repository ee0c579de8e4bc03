"""Discovery: ranked intent search, filters, keyset pages, capability counts and registry figures.

The ranking itself lives in `sql/queries/discovery.sql` (see docs/discovery.md); this module checks the
arguments (declared in core/discover_args.py), chooses the query shape, and encodes and checks cursors.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog

from mcplookup_mcp.core import validation
from mcplookup_mcp.core.discover_args import BROWSE_CAPABILITIES, DISCOVER, MAX_CURSOR
from mcplookup_mcp.core.errors import Unavailable
from mcplookup_mcp.core.metrics import DISCOVER_CACHE, DISCOVER_SEARCH_MODE, DISCOVERY_GENERATION_READS
from mcplookup_mcp.core.models import (
    CapabilitiesResult,
    CapabilityCount,
    DiscoveredServer,
    DiscoverResult,
    DiscoveryStats,
    Match,
    SearchMode,
)
from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.core.vocab import TYPED_FILLER
from mcplookup_mcp.services.analytics import EventBuffer, analytics_stats
from mcplookup_mcp.services.answer_cache import AnswerCache, SharedAnswers
from mcplookup_mcp.services.read_your_writes import WriteMarks
from mcplookup_mcp.services.semantic import Evidence, SemanticSearch
from mcplookup_mcp.services.shared_read import SharedRead
from mcplookup_mcp.store.repository import Queries, Repository, Row

# Candidate rows per index branch before the full blend: bounds ranking work at any registry size.
CANDIDATE_POOL = 50
# Stored words a query word of four letters or more stands for as a prefix, shortest first.
PREFIX_EXPANSIONS = 16
# A listing without query text counts its servers up to this many (DiscoverResult.total).
COUNT_CAP = 1000
# What each level of discover_ranked's term evidence is called in match.terms.
_HELD = {
    "6": "name",
    "5": "text",
    "4": "completed",
    "3": "completed",
    "2": "related",
    "1": "related",
    "0": "missing",
}
# match.matched's fields, in the order they are listed, and the document weight each one is stored under
# (B is the capabilities and category, or the tool names; D the tool descriptions, or the package
# identifiers and the repository name).
MATCH_FIELDS = ("name", "capabilities", "description", "tools", "packages")
_FIELD_OF_WEIGHT = {"A": "name", "C": "description", "D": "tools"}
# The ranked query's semantic parameters when the answer is lexical.
LEXICAL: dict[str, Any] = {
    "sem_ids": None,
    "sem_sims": None,
    "sem_bound": None,
    "sem_model": None,
    "mode": "lexical",
    "lexical_reason": None,
}
# How long a lexical answer given in a fallback (the model slow, busy or failing) is reused: long
# enough to spare the database a burst of the same question while the model is down, short enough that
# the fused answer is back within seconds of its recovery.
FALLBACK_CACHE_SECONDS = 2.0
# Why a later page of a question is lexical: its first page was (a cursor keeps the mode).
FIRST_PAGE_LEXICAL = "the first page of this question was ranked lexically"
# Answers each replica keeps (a page of 10 servers is some tens of kB of objects).
ANSWER_CACHE_ENTRIES = 1024
# Checked requests each replica remembers with their plan (a cache hit then skips the checks and the
# fingerprint: a tenth of a cached answer's time).
PLAN_ENTRIES = 1024
# The fused ranking (docs/discovery.md, tuned on bench/search_quality.py's sets): reciprocal-rank fusion
# of the lexical order and the order by meaning, each vote w / (RRF_K + rank); cosine similarities of
# all-MiniLM-L6-v2 that make a server a semantic candidate (floor), that a lexical match resting on
# completed prefixes or related words needs (support), and that make it partial on meaning alone (strong).
FUSION = {
    "rrf_k": 10.0,
    "w_lex": 1.0,
    "w_sem": 1.0,
    "sem_floor": 0.3,
    "sem_support": 0.15,
    "sem_strong": 0.6,
    "sem_top": 0.45,
    "sem_top_n": 1,
}

log = structlog.get_logger("mcplookup.discovery")

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Plan:
    query_name: str
    params: dict[str, Any]
    query: str
    sort: str
    limit: int
    fingerprint: str
    # The database may run it on one plan kept for every such search (see Repository.read): only
    # without filters, since a plan made without their values cannot choose the index they favour.
    reuse_plan: bool = False
    # The search mode the cursor's first page was ranked in: later pages are ranked the same way.
    cursor_mode: str | None = None


class DiscoveryService:
    def __init__(self, repo: Repository, settings: Settings, marks: WriteMarks | None = None) -> None:
        self.repo = repo
        # Who wrote what lately, so their next reads on a standby see it (read_your_writes.py).
        self.marks = marks or WriteMarks(repo)
        # Without a configured secret the key is random, made once and shared through the database.
        self._cursor_key: bytes | None = (
            hashlib.sha256(settings.cursor_secret.encode()).digest() if settings.cursor_secret else None
        )
        self._cursor_key_loading = asyncio.Lock()
        # Analytics of every search (and of get, register, verify: RegistryService uses the same buffer).
        self.events = EventBuffer(repo)
        self.answers: AnswerCache[DiscoverResult] = AnswerCache(
            settings.discover_cache_seconds,
            ANSWER_CACHE_ENTRIES,
            count=lambda outcome: DISCOVER_CACHE.labels(outcome).inc(),
            ttl_of=self.answer_ttl,
        )
        self._generation = SharedRead(self._read_generation)
        # The first WAL position this process read with the current generation (see _read_generation).
        self._generation_at: tuple[int, int] = (-1, 0)
        # Redis's tier behind this process's, when REDIS_URL is set (see app.py).
        self.shared: SharedAnswers[DiscoverResult] | None = None
        self.semantic = SemanticSearch(repo, settings)
        # Request arguments -> their plan. plan() is a function of the arguments alone (the cursor key
        # never changes once read), so a request asked again gets the same plan; refusals are not kept.
        self._plans: dict[tuple[tuple[str, str, Any], ...], Plan] = {}

    def planned(self, data: Mapping[str, Any]) -> Plan:
        """plan(data), remembered for arguments of plain values (text, numbers, lists of text)."""
        key = _plan_key(data)
        if key is None:
            return self.plan(data)
        plan = self._plans.get(key)
        if plan is None:
            plan = self.plan(data)
            if len(self._plans) >= PLAN_ENTRIES:
                del self._plans[next(iter(self._plans))]
            self._plans[key] = plan
        return plan

    def plan(self, data: Mapping[str, Any]) -> Plan:
        """Check the arguments and choose the query shape and its parameters."""
        args = DISCOVER.check(data)
        query: str = args["query"]
        sort: str = args["sort"]
        domain: str | None = args["domain"]
        caps: list[str] = args["capabilities"]
        match = args["capability_match"]
        filters: dict[str, Any] = {
            "domain": domain,
            "domain_reversed": validation.like_escape(("." + domain)[::-1]) + "%" if domain else None,
            "caps_all": caps if caps and match == "all" else None,
            "caps_any": caps if caps and match == "any" else None,
            "caps_exclude": args["exclude_capabilities"] or None,
            "category": args["category"],
            "transport": args["transport"],
            "auth_type": args["auth_type"],
            "verified_only": args["verified_only"],
            "healthy_only": args["healthy_only"],
            "min_trust_score": args["min_trust_score"],
            "include_pending": args["include_pending"],
        }
        limit: int = args["limit"]
        fingerprint = _fingerprint(query, sort, filters)
        after = self._read_cursor(args["cursor"], sort, fingerprint)
        cursor_mode = after[2] if after else None
        words = _WORD.findall(query)
        ranked = bool(words)
        params = filters | {
            "limit": limit + 1,
            "after_name": after[1] if after else None,
            "after_int": None,
            "after_real": None,
            "after_ts": None,
        }
        if after:
            params |= _after_params(sort, after[0], ranked)
        if ranked:
            params |= {
                "query": query,
                "sort": sort,
                "fuzzy": _fuzzy_words(words),
                "typed_words": _typed_words(words),
                "open_word": _open_word(query, words),
                "pool": CANDIDATE_POOL,
                "prefix_expansions": PREFIX_EXPANSIONS,
                # Any filter (include_pending too) takes the any-term pool from the GIN index.
                "filtered": any(filters.values()),
            }
            # Lexical until _with_meaning adds the question's semantic evidence.
            params |= FUSION | LEXICAL
            return Plan(
                "discover_ranked",
                params,
                query,
                sort,
                limit,
                fingerprint,
                reuse_plan=not params["filtered"],
                cursor_mode=cursor_mode,
            )
        return Plan(
            "browse_by_" + ("trust" if sort == "relevance" else sort), params, query, sort, limit, fingerprint
        )

    async def discover(self, data: Mapping[str, Any], *, transport: str) -> DiscoverResult:
        if self._cursor_key is None:
            await self._load_cursor_key()
        plan = self.planned(data)
        started = time.perf_counter()
        floor = await self.marks.floor()
        if not self.answers.enabled:
            result = await self._search(plan, floor)
        else:
            # The cursor is part of the key: plan() has checked its signature, so it names one page.
            key = (plan.query_name, plan.fingerprint, plan.limit, data.get("cursor") or "")
            # Read before the search: a change committed in between moves the generation after this
            # read, so an answer can only be stored under an older generation than its data, never a newer.
            # On a standby the same holds once it has replayed the WAL position read with the
            # generation: the search waits for that, or runs on the primary.
            generation, position = await self.current_generation()
            after = max(floor, position)
            shared = self.shared
            search = (
                (lambda: shared.answer(key, generation, lambda: self._search(plan, after)))
                if shared is not None
                else (lambda: self._search(plan, after))
            )
            result = await self.answers.answer(key, generation, search)
        self.events.record(
            "discover",
            started=started,
            transport=transport,
            result_count=result.count,
            query=plan.query,
            capabilities=plan.params["caps_all"] or plan.params["caps_any"] or (),
            domain=plan.params["domain"],
        )
        return result

    async def current_generation(self) -> tuple[int, int]:
        """The discovery generation answers are cached under, and the WAL position a standby must have
        replayed to answer for it. Pushed by this process's listener (no round trip) while it vouches for
        it and no standby serves reads (the push carries no WAL position; then 0: the primary answers),
        else read now on the primary (store/generation_feed.py, store/standby.py)."""
        pushed = self.repo.pushed_generation()
        if pushed is not None and not self.repo.has_standbys:
            return pushed, 0
        DISCOVERY_GENERATION_READS.inc()
        return await self._generation.get()

    async def _generation_number(self) -> int:
        return (await self.current_generation())[0]

    async def _with_meaning(self, plan: Plan) -> Plan:
        """The plan with the question's semantic evidence, or lexical and why (the mode a cursor's first
        page had is kept: pages of one question are ranked one way)."""
        evidence: Evidence | None = None
        reason: str | None = FIRST_PAGE_LEXICAL
        if plan.cursor_mode != "lexical":
            evidence, reason = await self.semantic.evidence(
                plan.query, self._generation_number, plan.params if plan.params["filtered"] else None
            )
        if evidence is None and plan.cursor_mode == "fused":
            raise Unavailable(f"the next page could not be ranked as the first was ({reason})")
        if evidence is None:
            params = plan.params | LEXICAL | {"lexical_reason": reason}
        else:
            params = plan.params | {
                "sem_ids": evidence.ids,
                "sem_sims": evidence.similarities,
                "sem_bound": evidence.bound,
                "sem_model": evidence.model,
                "mode": "fused",
                "lexical_reason": None,
            }
        return replace(plan, params=params)

    def answer_ttl(self, result: DiscoverResult) -> float:
        """How long an answer may be reused: a lexical answer given only because the model was slow,
        busy or failing (or had no vectors yet) briefly, so the fused one returns once it recovers; the
        rest for the cache's lifetime."""
        fallback = (
            result.search_mode == "lexical"
            and self.semantic.embedder is not None
            and result.lexical_reason != FIRST_PAGE_LEXICAL
        )
        return FALLBACK_CACHE_SECONDS if fallback else self.answers.ttl

    async def _read_generation(self) -> tuple[int, int]:
        """The generation and the earliest WAL position this process read it with. On the primary, never
        a standby: a sequence read on a standby may show a value logged ahead of the rows it counts.
        Every commit the generation counts was visible when it was first read, so a standby that has
        replayed that first position answers exactly as the primary would have then."""
        async with self.repo.read() as q:
            generation, position = await q.discovery_generation_at()
        if generation != self._generation_at[0]:
            self._generation_at = (generation, position)
        return self._generation_at

    async def _search(self, plan: Plan, after: int = 0) -> DiscoverResult:
        # Inside the cached step: a cached answer costs no embedding and no vector search.
        if plan.query_name == "discover_ranked":
            plan = await self._with_meaning(plan)
            fused = plan.params.get("mode") == "fused"
            loaded = self.semantic.embedder is not None
            DISCOVER_SEARCH_MODE.labels("fused" if fused else "fallback" if loaded else "lexical").inc()

        async def search(q: Queries) -> tuple[list[Row], int | None]:
            rows = await q.discover(plan.query_name, plan.params)
            listed = (
                None
                if "query" in plan.params
                else await q.count_listing(plan.params | {"count_cap": COUNT_CAP + 1})
            )
            return rows, listed

        rows, listed = await self.repo.standby_read(search, after=after, kept_plans=plan.reuse_plan)
        return self._result(plan, rows, listed)

    def _result(self, plan: Plan, rows: list[Row], listed: int | None) -> DiscoverResult:
        more = len(rows) > plan.limit
        rows = rows[: plan.limit]
        mode = plan.params.get("mode")
        next_cursor = (
            self._write_cursor(plan.sort, plan.fingerprint, rows[-1], mode) if more and rows else None
        )
        servers = [
            DiscoveredServer.from_row(
                row,
                match=Match(
                    strength=row.get("strength"),
                    terms=_terms(row),
                    relevance=round(float(row["relevance"]), 6),
                    matched=_matched(row),
                    words=_words(row),
                    matched_words=_matched_words(row),
                    similarity=round(float(row["similarity"]), 4)
                    if row.get("similarity") is not None
                    else None,
                ),
            )
            for row in rows
        ]
        first_page = plan.params["after_name"] is None
        if listed is not None:
            total: int | None = min(listed, COUNT_CAP)
            no_confident_match = None
        elif rows:
            total, no_confident_match = int(rows[0]["total"]), not rows[0]["confident"]
        else:
            # Nothing ranked at all; past the last page (a cursor) the earlier pages said it.
            total, no_confident_match = (0, True) if first_page else (None, None)
        return DiscoverResult(
            servers=servers,
            count=len(servers),
            total=total,
            total_is_lower_bound=listed is not None and listed > COUNT_CAP,
            no_confident_match=no_confident_match,
            query=plan.query or None,
            sort=plan.sort,
            search_mode=mode,
            lexical_reason=plan.params.get("lexical_reason"),
            next_cursor=next_cursor,
        )

    async def browse_capabilities(self, data: Mapping[str, Any]) -> CapabilitiesResult:
        limit: int = BROWSE_CAPABILITIES.check(data)["limit"]
        rows = await self.repo.standby_read(
            lambda q: q.capability_counts(limit), after=await self.marks.floor()
        )
        return CapabilitiesResult(
            capabilities=[
                CapabilityCount(value=r["value"], servers=r["servers"])
                for r in rows
                if r["kind"] == "capability"
            ],
            categories=[
                CapabilityCount(value=r["value"], servers=r["servers"])
                for r in rows
                if r["kind"] == "category"
            ],
        )

    async def flush_events(self) -> None:
        """Write the buffered analytics events now (the background writer does it every second)."""
        await self.events.flush()

    async def stats(self) -> DiscoveryStats:
        await self.flush_events()
        row = await self.repo.standby_read(lambda q: q.discovery_stats(), after=await self.marks.floor())
        return DiscoveryStats(
            listed_servers=row["listed"],
            verified_servers=row["verified"],
            imported_servers=row["imported"],
            pending_claims=row["pending"],
            healthy_servers=row["healthy"],
            servers_with_blocked_remotes=row["remotes_blocked"],
            transports=row["transports"] or {},
            servers_without_transport=row["no_transport"],
            average_trust_score=round(float(row["avg_trust_score"] or 0), 2),
            searches_last_24h=row["searches_24h"],
            search_p95_ms_last_24h=round(float(row["search_p95_ms_24h"]), 2)
            if row["search_p95_ms_24h"] is not None
            else None,
            search=await self._search_mode(),
            **(await analytics_stats(self.repo)),
        )

    async def _search_mode(self) -> SearchMode:
        described = self.semantic.describe()
        progress = await self.semantic.progress()
        if progress is None:
            return described
        return described.model_copy(
            update={"embedded_servers": progress["embedded"], "waiting_servers": progress["waiting"]}
        )

    # cursors: base64url(JSON payload) "." base64url(HMAC-SHA256), bound to the query, filters and sort

    def _write_cursor(self, sort: str, fingerprint: str, row: Row, mode: str | None) -> str:
        payload = {"v": 1, "s": sort, "k": row["sort_key"], "n": row["name"], "f": fingerprint}
        if mode is not None:
            payload["m"] = mode
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{_b64(self._sign(body))}"

    def _sign(self, body: str) -> bytes:
        if self._cursor_key is None:
            raise RuntimeError("the cursor key is read by discover() before any cursor is made or checked")
        return hmac.new(self._cursor_key, body.encode(), hashlib.sha256).digest()[:16]

    async def _load_cursor_key(self) -> None:
        async with self._cursor_key_loading:
            # A replica that lost the race to store its key sees the winner's on the next statement.
            for _ in range(3):
                if self._cursor_key is not None:
                    return
                async with self.repo.read() as q:
                    self._cursor_key = await q.cursor_key(secrets.token_bytes(32))
            if self._cursor_key is None:
                raise Unavailable("the cursor key could not be read; try again")

    def _read_cursor(self, value: object, sort: str, fingerprint: str) -> tuple[str, str, str | None] | None:
        if value is None or value == "":
            return None
        bad = validation.refuse(
            "cursor",
            "not a cursor of this question",
            "the next_cursor of the previous page, unchanged, with the same query, filters and sort",
            "that next_cursor, or leave cursor out to start again",
        )
        if not isinstance(value, str) or len(value) > MAX_CURSOR or value.count(".") != 1:
            raise bad
        body, signature = value.split(".")
        # The signature first: only a cursor this service made is parsed at all.
        try:
            given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        except ValueError:
            raise bad from None
        if not hmac.compare_digest(given, self._sign(body)):
            raise bad
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, RecursionError):
            raise bad from None
        if not isinstance(payload, dict) or payload.get("v") != 1:
            raise bad
        if payload.get("s") != sort or payload.get("f") != fingerprint:
            raise bad
        key, name, mode = payload.get("k"), payload.get("n"), payload.get("m")
        if not isinstance(key, str) or not isinstance(name, str) or mode not in (None, "fused", "lexical"):
            raise bad
        return key, name, mode


def _field_lexemes(row: Row) -> dict[str, set[str]]:
    """The stored fields that hold each matched lexeme (see discover_ranked's last step)."""
    capabilities = set(row.get("matched_capabilities") or ())
    packages = set(row.get("matched_packages") or ())
    fields: dict[str, set[str]] = {}
    for entry in row.get("matched_lexemes") or ():
        weights, _, lexeme = entry.partition(":")  # the weights are letters: the first colon ends them
        for weight in set(weights):
            if weight == "B":
                field = "capabilities" if lexeme in capabilities else "tools"
            elif weight == "D":
                field = "packages" if lexeme in packages else "tools"
            else:
                field = _FIELD_OF_WEIGHT[weight]
            fields.setdefault(field, set()).add(lexeme)
    return fields


def _matched(row: Row) -> dict[str, list[str]]:
    """match.matched: the stored fields and the lexemes each holds, with the name's words near a misspelt
    query word."""
    fields = _field_lexemes(row)
    for name_word, _typed in row.get("matched_name_words") or ():
        fields.setdefault("name", set()).add(name_word)
    return {field: sorted(fields[field]) for field in MATCH_FIELDS if field in fields}


def _typed_of(row: Row) -> dict[str, set[str]]:
    """Each matched lexeme -> the words of the query, as typed, it stands for (discover_ranked's
    [lexeme, term, word] triples)."""
    typed: dict[str, set[str]] = {}
    for lexeme, _term, word in row.get("lexeme_words") or ():
        typed.setdefault(lexeme, set()).add(word)
    return typed


def _matched_words(row: Row) -> dict[str, list[str]]:
    """match.matched_words: match.matched in the query's own words, never stems."""
    typed = _typed_of(row)
    fields = {
        field: {word for lexeme in lexemes for word in typed.get(lexeme, ())}
        for field, lexemes in _field_lexemes(row).items()
    }
    for _name_word, misspelt in row.get("matched_name_words") or ():
        fields.setdefault("name", set()).add(misspelt)
    return {field: sorted(fields[field]) for field in MATCH_FIELDS if fields.get(field)}


def _terms(row: Row) -> dict[str, str]:
    """match.terms: how the server holds each query term (discover_ranked's term_evidence, "level:term")."""
    evidence = {}
    for entry in row.get("term_evidence") or ():
        level, _, term = entry.partition(":")
        evidence[term] = _HELD[level]
    return evidence


def _words(row: Row) -> dict[str, str]:
    """match.words: match.terms keyed by the words as typed; a word standing for several terms ("e-mail":
    e-mail, e, mail) takes the strongest evidence."""
    typed = {term: word for _lexeme, term, word in row.get("lexeme_words") or ()}
    levels: dict[str, str] = {}
    for entry in row.get("term_evidence") or ():
        level, _, term = entry.partition(":")
        word = typed.get(term, term)
        if int(level) > int(levels.get(word, "-1")):
            levels[word] = level
    return {word: _HELD[level] for word, level in levels.items()}


def _after_params(sort: str, key: str, ranked: bool) -> dict[str, Any]:
    try:
        if ranked or sort == "latency":
            return {"after_real": float(key)}
        if sort in ("trust", "relevance"):
            return {"after_int": int(key)}
        if sort == "newest":
            return {"after_ts": key}
    except ValueError:
        raise validation.refuse(
            "cursor",
            "not a cursor of this question",
            "the next_cursor of the previous page, unchanged",
            "that next_cursor, or leave cursor out to start again",
        ) from None
    return {}


def _plan_key(data: Mapping[str, Any]) -> tuple[tuple[str, str, Any], ...] | None:
    """The arguments as a key, or None when a value is not plain. Types are kept apart: 1 and True are
    equal in Python, not as arguments."""
    items: list[tuple[str, str, Any]] = []
    for name, value in data.items():
        kind = type(value).__name__
        if isinstance(value, list):
            if not all(type(v) is str for v in value):
                return None
            value = tuple(value)
        elif value is not None and type(value) not in (str, int, float, bool):
            return None
        items.append((name, kind, value))
    return tuple(sorted(items, key=lambda item: item[0]))


def _fingerprint(query: str, sort: str, filters: Mapping[str, Any]) -> str:
    canonical = json.dumps([query, sort, dict(sorted(filters.items()))], default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _typed_words(words: list[str]) -> list[str]:
    """The query's words as typed, lowercased: a stored word may complete one of them (discover_ranked)."""
    return list(dict.fromkeys(w.lower() for w in words))[:16]


def _open_word(query: str, words: list[str]) -> str | None:
    """The last word when the query ends in it, as when it is still being typed ("kube")."""
    return words[-1].lower() if words and query.endswith(words[-1]) else None


def _fuzzy_words(words: list[str]) -> list[str]:
    kept = [w.lower() for w in words if len(w) >= 4 and w.lower() not in TYPED_FILLER]
    return list(dict.fromkeys(kept))[:6]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
