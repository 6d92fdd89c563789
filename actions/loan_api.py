"""Typed async client of the bot-facing loan API (``docs/contracts.md``), used by every action.

Timeouts are explicit and far shorter than Rasa's action timeout and the gateway's deadline, so
a slow API turns into "try again shortly" instead of a silent chat. Errors form one hierarchy:
actions catch :class:`LoanApiError` for "the API failed" and the few subclasses that carry a
meaning for the conversation (verification needed, failed, locked; a promise refused).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from rasa_sdk import Tracker

from actions.api_connections import shared_client

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(3.0, connect=1.0)
# Tests of the actions put a fake API here (an httpx MockTransport); None means real HTTP.
default_transport: httpx.AsyncBaseTransport | None = None


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Identity(_Model):
    status: Literal["unverified", "verified", "expired", "locked"]
    locale: str | None = None
    first_name: str | None = None
    timezone: str | None = None


class VerificationStarted(_Model):
    factor: Literal["dob", "national_id"]
    factors: list[Literal["dob", "national_id"]] = []

    @property
    def offered(self) -> list[str]:
        """Every factor the borrower may answer (older APIs name one)."""
        return list(self.factors) or [self.factor]


class Verified(_Model):
    status: str
    locale: str | None = None
    timezone: str | None = None


class NextInstallment(_Model):
    due_date: date
    amount: Decimal


class Loan(_Model):
    loan_id: int | str
    account_reference: str
    currency: str
    outstanding: Decimal
    arrears: Decimal
    days_past_due: int
    status: str
    next_installment: NextInstallment | None = None


class Installment(_Model):
    seq: int
    due_date: date
    amount_due: Decimal
    amount_paid: Decimal
    status: str


class Payment(_Model):
    amount: Decimal
    currency: str
    received_at: datetime
    method: str | None = None
    reference: str | None = None


class PaymentInstructions(_Model):
    account_reference: str
    currency: str
    mobile_money: list[dict[str, Any]] = []
    bank: dict[str, Any] | None = None
    agents: list[dict[str, Any]] = []


class Promise(_Model):
    promise_id: int | str
    amount: Decimal
    currency: str
    promised_date: date
    status: str


class Case(_Model):
    reference: str
    kind: str
    status: str
    officer_name: str | None = None
    sla_due_at: datetime
    # opened | added (to the open case of this kind) | capped (over the daily cap): only
    # "opened" alerted an officer; the others are "already with your officer".
    disposition: str = "opened"


class PaymentClaim(_Model):
    found: bool
    payment: Payment | None = None
    case_reference: str | None = None
    expected_within_hours: int | None = None
    disposition: str | None = None


def message_reference(tracker: Tracker) -> str:
    """The channel's id of the message being answered, the same on every delivery of it.

    The gateway puts it in the user message's metadata as ``message_id`` (``tg:<chat>:<id>``,
    the WhatsApp message id). Rasa's event timestamp is new on each delivery, so a duplicated
    webhook would look like a new request; it stands in only where a channel has no message
    ids (the terminal chat).
    """
    metadata = (tracker.latest_message or {}).get("metadata")
    message_id = metadata.get("message_id") if isinstance(metadata, dict) else None
    if isinstance(message_id, str) and message_id:
        return message_id
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return f"t:{float(event.get('timestamp') or 0.0)}"
    return "t:0"


def request_key(tracker: Tracker, purpose: str, *parts: object) -> str:
    """The Idempotency-Key of a request made in answer to the latest user message.

    Conversation, purpose and the message's channel id (:func:`message_reference`): a retry or
    a redelivery of that message makes one record, a later message another.
    """
    material = "\x00".join(
        str(p) for p in (tracker.sender_id, purpose, message_reference(tracker), *parts)
    )
    return hashlib.sha256(material.encode()).hexdigest()[:40]


class LoanApiError(Exception):
    """The loan API could not answer (unreachable, timed out, unexpected status or body)."""


class VerificationRequired(LoanApiError):
    """403 ``verification_required``: the chat is not verified or idle for too long."""


class VerificationFailed(LoanApiError):
    """401 ``verification_failed``: the knowledge factor did not match."""

    def __init__(self, attempts_left: int) -> None:
        super().__init__(f"{attempts_left} attempts left")
        self.attempts_left = attempts_left


class IdentityLocked(LoanApiError):
    """423 ``locked``: too many failed checks; ``held`` until an officer unlocks the chat."""

    def __init__(self, locked_until: datetime | None, *, held: bool = False) -> None:
        super().__init__("locked")
        self.locked_until = locked_until
        self.held = held


class PhoneRequired(LoanApiError):
    """422 ``phone_required``: the chat has proven no phone yet."""


class FactorNotOffered(LoanApiError):
    """409 ``factor_not_offered``: the answer was to a factor this check did not offer."""


class PromiseRejected(LoanApiError):
    """422 on a promise: the code says which rule refused it; ``max_date`` for the policy."""

    def __init__(self, code: str, max_date: date | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.max_date = max_date


class NotFound(LoanApiError):
    """404: not this borrower's loan, or no such record."""


class LoanApiClient:
    """One instance per action run; close it or use ``async with``. Real HTTP goes through the
    loop's shared keep-alive pool (:mod:`actions.api_connections`), which closing leaves open."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = (base_url or os.environ.get("KOPA_API_URL", DEFAULT_API_URL)).rstrip("/") + "/v1"
        secret = token if token is not None else os.environ.get("KOPA_SERVICE_TOKEN", "")
        self._timeout = timeout
        self._headers = {"Authorization": f"Bearer {secret}"}
        # A transport given (tests' fake API) gets a client of its own, closed with this one.
        own_transport = transport or default_transport
        self._owned = own_transport is not None
        self._client = (
            httpx.AsyncClient(base_url=base, transport=own_transport)
            if own_transport is not None
            else shared_client(base)
        )

    async def __aenter__(self) -> LoanApiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._owned:
            await self._client.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        headers = dict(self._headers)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        started = time.monotonic()
        try:
            response = await self._client.request(
                method,
                path,
                json=json,
                params=params,
                headers=headers,
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            # The borrower hears "try again"; the log says why (never the path: it names a chat).
            logger.warning(
                "loan API %s failed after %.1f s: %s",
                method,
                time.monotonic() - started,
                type(exc).__name__,
            )
            raise LoanApiError(type(exc).__name__) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code < 300:
            return body
        code = body.get("code") if isinstance(body, dict) else None
        detail = body.get("detail") if isinstance(body, dict) else None
        context = detail if isinstance(detail, dict) else (body if isinstance(body, dict) else {})
        if response.status_code == 403 and code == "verification_required":
            raise VerificationRequired(code)
        if response.status_code == 401 and code == "verification_failed":
            raise VerificationFailed(int(context.get("attempts_left", 0)))
        if response.status_code == 423:
            until = context.get("locked_until")
            held = bool(context.get("held"))
            raise IdentityLocked(datetime.fromisoformat(until) if until else None, held=held)
        if response.status_code == 422 and code == "phone_required":
            raise PhoneRequired(code)
        if response.status_code == 409 and code == "factor_not_offered":
            raise FactorNotOffered(code)
        if response.status_code == 404:
            raise NotFound(str(code))
        if response.status_code == 422 and code in PROMISE_RULES:
            max_date = context.get("max_date")
            raise PromiseRejected(code, date.fromisoformat(max_date) if max_date else None)
        raise LoanApiError(f"status {response.status_code} {code or ''}".strip())

    async def _get_model(self, model: type[Any], method: str, path: str, **kw: Any) -> Any:
        body = await self._request(method, path, **kw)
        try:
            return TypeAdapter(model).validate_python(body)
        except ValidationError as exc:
            raise LoanApiError(f"unexpected answer from {path}") from exc

    async def identity(self, channel: str, user: str) -> Identity:
        result: Identity = await self._get_model(Identity, "GET", f"/identities/{channel}/{user}")
        return result

    async def start_verification(
        self, channel: str, user: str, phone: str | None = None
    ) -> VerificationStarted:
        """Start the check; without ``phone`` the API uses the one the gateway registered."""
        result: VerificationStarted = await self._get_model(
            VerificationStarted,
            "POST",
            f"/identities/{channel}/{user}/verification/start",
            json={"phone": phone} if phone is not None else {},
        )
        return result

    async def complete_verification(
        self, channel: str, user: str, answers: dict[str, str]
    ) -> Verified:
        """Check the answers (factor -> typed value), all in one try."""
        result: Verified = await self._get_model(
            Verified,
            "POST",
            f"/identities/{channel}/{user}/verification/complete",
            json={"answers": answers},
        )
        return result

    async def request_callback(
        self,
        channel: str,
        user: str,
        phone: str | None,
        *,
        hardship: bool = False,
        borrower_words: str | None = None,
    ) -> None:
        """Ask the officer to call back the registered number of the chat's proven phone (a
        hardship case when the borrower told of hardship)."""
        body: dict[str, Any] = {"phone": phone}
        if hardship:
            body |= {"hardship": True, "borrower_words": borrower_words}
        await self._request("POST", f"/identities/{channel}/{user}/callback", json=body)

    async def loans(self, channel: str, user: str) -> list[Loan]:
        result: list[Loan] = await self._get_model(
            list[Loan], "GET", f"/identities/{channel}/{user}/loans"
        )
        return result

    async def schedule(self, channel: str, user: str, loan_id: int | str) -> list[Installment]:
        result: list[Installment] = await self._get_model(
            list[Installment], "GET", f"/identities/{channel}/{user}/loans/{loan_id}/schedule"
        )
        return result

    async def payments(
        self, channel: str, user: str, loan_id: int | str, limit: int = 5
    ) -> list[Payment]:
        result: list[Payment] = await self._get_model(
            list[Payment],
            "GET",
            f"/identities/{channel}/{user}/loans/{loan_id}/payments",
            params={"limit": limit},
        )
        return result

    async def payment_instructions(self, channel: str, user: str) -> PaymentInstructions:
        result: PaymentInstructions = await self._get_model(
            PaymentInstructions, "GET", f"/identities/{channel}/{user}/payment-instructions"
        )
        return result

    async def create_promise(
        self,
        channel: str,
        user: str,
        *,
        amount: Decimal,
        promised_date: date,
        loan_id: int | str | None,
        idempotency_key: str,
    ) -> Promise:
        body: dict[str, Any] = {"amount": str(amount), "promised_date": promised_date.isoformat()}
        if loan_id is not None:
            body["loan_id"] = loan_id
        result: Promise = await self._get_model(
            Promise,
            "POST",
            f"/identities/{channel}/{user}/promises",
            json=body,
            idempotency_key=idempotency_key,
        )
        return result

    async def open_case(
        self,
        channel: str,
        user: str,
        *,
        kind: str,
        idempotency_key: str,
        category: str | None = None,
        borrower_words: str | None = None,
        requested_relief: str | None = None,
    ) -> Case:
        body: dict[str, Any] = {"kind": kind}
        optional = {
            "category": category,
            "borrower_words": borrower_words,
            "requested_relief": requested_relief,
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        result: Case = await self._get_model(
            Case,
            "POST",
            f"/identities/{channel}/{user}/cases",
            json=body,
            idempotency_key=idempotency_key,
        )
        return result

    async def claim_payment(
        self,
        channel: str,
        user: str,
        *,
        amount: Decimal | None = None,
        paid_on: date | None = None,
        reference: str | None = None,
        idempotency_key: str | None = None,
    ) -> PaymentClaim:
        body: dict[str, Any] = {}
        if amount is not None:
            body["amount"] = str(amount)
        if paid_on is not None:
            body["paid_on"] = paid_on.isoformat()
        if reference is not None:
            body["reference"] = reference
        result: PaymentClaim = await self._get_model(
            PaymentClaim,
            "POST",
            f"/identities/{channel}/{user}/payment-claims",
            json=body,
            idempotency_key=idempotency_key,
        )
        return result

    async def set_consent(self, channel: str, user: str, *, opted_in: bool) -> None:
        await self._request(
            "PUT", f"/identities/{channel}/{user}/consent", json={"opted_in": opted_in}
        )

    async def set_language(self, channel: str, user: str, locale: str) -> None:
        await self._request(
            "PUT", f"/identities/{channel}/{user}/language", json={"locale": locale}
        )


PROMISE_RULES = frozenset(
    {"amount_not_positive", "amount_above_outstanding", "date_in_past", "date_beyond_policy"}
)
