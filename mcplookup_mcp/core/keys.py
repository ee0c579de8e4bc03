"""Secrets handed to owners: API keys and claim registration ids. Only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_KEY_PREFIX = "mcpl_"
REGISTRATION_PREFIX = "mcpreg_"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_registration_id() -> str:
    return REGISTRATION_PREFIX + secrets.token_urlsafe(32)


def new_challenge_token() -> str:
    """40 hex characters (160 bits) for the claim's TXT record."""
    return secrets.token_hex(20)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def matches(secret: str, stored_hash: bytes) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    return hmac.compare_digest(digest(secret), bytes(stored_hash))


def display_prefix(api_key: str) -> str:
    """Enough of a key to tell keys apart in listings, far too little to use."""
    return api_key[: len(API_KEY_PREFIX) + 4]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
