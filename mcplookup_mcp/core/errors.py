"""The project's own errors. Transports map them to responses in one place each.

The class docstring is the default message; `field` names the offending input where there is one.
`status` is the HTTP status a REST answer carries; MCP answers carry the message as an `isError`
tool result.
"""

from __future__ import annotations

import re
from typing import Any

# Seconds a client is told to wait when a dependency (PostgreSQL) does not answer: short and fixed, since
# the service cannot know how long an outage lasts, and what nginx's own 503 says when no replica
# answers (nginx/mcplookup.conf).
UNAVAILABLE_RETRY_AFTER = 5


class RegistryError(Exception):
    """The request could not be completed."""

    status = 400
    slug = "bad-request"

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.field = field
        super().__init__(self.message)

    def extensions(self) -> dict[str, Any]:
        """Members a REST problem carries beside type, title, status, detail and field."""
        return {}


class InvalidInput(RegistryError):
    """An argument is invalid."""

    status = 422
    slug = "invalid-input"


class BodyTooLarge(RegistryError):
    """The request body is too large."""

    status = 413
    slug = "body-too-large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the request body is larger than {limit} bytes, the most this service reads; send a smaller one"
        )
        self.limit = limit

    def extensions(self) -> dict[str, Any]:
        return {"max_body_bytes": self.limit}


class NotFound(RegistryError):
    """No such server."""

    status = 404
    slug = "not-found"


class AlreadyRegistered(RegistryError):
    """A server with this name is already listed."""

    status = 409
    slug = "already-registered"


class Conflict(RegistryError):
    """The request conflicts with the current state."""

    status = 409
    slug = "conflict"


class ClaimExpired(RegistryError):
    """The claim has expired: register again to get a new record to publish."""

    status = 410
    slug = "claim-expired"


class AuthRequired(RegistryError):
    """This needs the domain's API key as `Authorization: Bearer mcpl_...`."""

    status = 401
    slug = "auth-required"


class Forbidden(RegistryError):
    """This API key may not do that."""

    status = 403
    slug = "forbidden"


class RateLimited(RegistryError):
    """Too many requests: wait and try again."""

    status = 429
    slug = "rate-limited"

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(RegistryError):
    """A dependency is unavailable: try again shortly."""

    status = 503
    slug = "unavailable"

    def __init__(self, message: str | None = None, *, retry_after: int = UNAVAILABLE_RETRY_AFTER) -> None:
        # The message ends with when to retry, on REST and MCP alike (a model reads only the text); a
        # vaguer "try again" at its end gives way to it.
        cause = _VAGUE_RETRY.sub("", message or (self.__doc__ or "").strip())
        super().__init__(f"{cause}; retry in {retry_after} seconds")
        self.retry_after = retry_after


# Seconds a client is told to wait when every database connection is in use and PostgreSQL answers:
# the pool frees one per finished request, so a short wait is enough.
BUSY_RETRY_AFTER = 2


class Busy(Unavailable):
    """The registry is busy: every database connection is in use."""

    slug = "busy"

    def __init__(self, message: str | None = None, *, retry_after: int = BUSY_RETRY_AFTER) -> None:
        super().__init__(message or "the registry is busy", retry_after=retry_after)


_VAGUE_RETRY = re.compile(r"[;:,]?\s*try again( shortly)?\.?$")
