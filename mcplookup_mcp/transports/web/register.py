"""Register and verify from a browser: the claim form, the TXT record to publish, "check now", the key.

The same service calls as register_server and verify_domain. Secrets travel in POST bodies only (the
registration id in a hidden field of the check form, the API key in the one answer that issues it), never
in a URL, and every page that holds one is sent with `Cache-Control: no-store`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mcplookup_mcp.core import validation
from mcplookup_mcp.core.errors import InvalidInput, NotFound, RateLimited, RegistryError
from mcplookup_mcp.core.models import RegisterResult
from mcplookup_mcp.core.next_steps import WEB
from mcplookup_mcp.core.vocab import Transport
from mcplookup_mcp.services.service import RegistryService
from mcplookup_mcp.transports.web.csrf import FIELD as CSRF_FIELD
from mcplookup_mcp.transports.web.csrf import Csrf, CsrfRejected
from mcplookup_mcp.transports.web.forms import BadForm, checked_form, client_address
from mcplookup_mcp.transports.web.rendering import Templates

# The claim form's fields, as register_server names them.
TEXT_FIELDS = (
    "domain",
    "slug",
    "endpoint",
    "title",
    "description",
    "capabilities",
    "category",
    "transport",
    "auth_type",
    "website_url",
    "repository_url",
)
FORM_DEFAULTS = {"slug": "mcp", "transport": Transport.STREAMABLE_HTTP, "auth_type": "none"}


class Registration:
    def __init__(self, service: RegistryService, templates: Templates, csrf: Csrf) -> None:
        self.service = service
        self.templates = templates
        self.csrf = csrf

    def _page(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        status: int = 200,
        error: RegistryError | None = None,
    ) -> Response:
        token = self.csrf.token_for(request)
        response = self.templates.render(
            template,
            {**context, "csrf_field": CSRF_FIELD, "csrf_token": token, "nav": "register"},
            status=status,
            no_store=True,
            headers={"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else None,
        )
        self.csrf.remember(response, token)
        return response

    def _form_page(
        self, request: Request, values: dict[str, str], error: RegistryError | None = None, status: int = 200
    ) -> Response:
        return self._page(
            request,
            "register.html",
            {
                "values": {key: values.get(key, FORM_DEFAULTS.get(key, "")) for key in TEXT_FIELDS},
                "recover": values.get("recover_ownership") == "true",
                "error": error.message if error else None,
                "error_field": error.field if error else None,
                "transports": validation.TRANSPORTS,
                "auth_types": validation.AUTH_TYPES,
            },
            status,
            error,
        )

    async def _checked_form(self, request: Request) -> dict[str, str] | Response:
        try:
            form = await checked_form(request, self.csrf, self.service.settings.max_body_bytes)
        except (BadForm, CsrfRejected) as exc:
            status = 403 if isinstance(exc, CsrfRejected) else exc.status
            return self._page(request, "form_refused.html", {"message": str(exc)}, status)
        return form

    async def show_form(self, request: Request) -> Response:
        return self._form_page(request, {})

    async def submit(self, request: Request) -> Response:
        form = await self._checked_form(request)
        if isinstance(form, Response):
            return form
        data: dict[str, Any] = {key: form[key].strip() for key in TEXT_FIELDS if form.get(key, "").strip()}
        if form.get("recover_ownership") == "true":
            data["recover_ownership"] = True
        api_key = form.get("api_key", "").strip() or None
        try:
            result = await self.service.register(
                data, api_key=api_key, client=client_address(request), steps=WEB
            )
        except RegistryError as exc:
            # The API key is never written back into the page.
            return self._form_page(request, form, exc, status=exc.status)
        if result.status == "listed":
            return self._page(request, "registered.html", {"result": result}, 201)
        return self._claim_page(request, result, check=None)

    def _claim_page(
        self,
        request: Request,
        claim: RegisterResult | None,
        *,
        check: dict[str, Any] | None,
        domain: str = "",
        registration_id: str = "",
        status: int = 200,
        error: RegistryError | None = None,
    ) -> Response:
        return self._page(
            request,
            "claim.html",
            {
                "claim": claim,
                "check": check,
                "domain": claim.domain if claim else domain,
                "registration_id": (claim.registration_id if claim else None) or registration_id,
            },
            status,
            error,
        )

    async def show_check(self, request: Request) -> Response:
        """The check form on its own, for a claimant who comes back with a saved registration id."""
        return self._page(request, "check.html", {"domain": "", "error": None})

    async def check(self, request: Request) -> Response:
        form = await self._checked_form(request)
        if isinstance(form, Response):
            return form
        domain = form.get("domain", "").strip()
        registration_id = form.get("registration_id", "").strip()
        try:
            result = await self.service.verify(
                {"domain": domain, "registration_id": registration_id},
                client=client_address(request),
                steps=WEB,
            )
        except (InvalidInput, NotFound) as exc:
            # A mistyped domain or id: the check form again, to correct it.
            return self._page(request, "check.html", {"domain": domain, "error": exc.message}, exc.status)
        except RegistryError as exc:
            # Already verified, voided or expired claims cannot be checked again; a rate limit can wait.
            return self._claim_page(
                request,
                None,
                check={"error": exc.message, "final": exc.status in (409, 410)},
                domain=domain,
                registration_id=registration_id,
                status=exc.status,
                error=exc,
            )
        if result.verified:
            return self._page(request, "verified.html", {"result": result})
        return self._claim_page(
            request,
            None,
            check={"result": result},
            domain=domain,
            registration_id=registration_id,
        )
