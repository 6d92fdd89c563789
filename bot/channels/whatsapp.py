"""WhatsApp through the Cloud API (Graph) with an async httpx client and explicit timeouts.

Inbound: ``bot.app`` checks ``X-Hub-Signature-256`` over the raw body (:func:`signature_ok`)
before anything is parsed, then :func:`parse_webhook` yields messages and delivery statuses. The
sender's WhatsApp id *is* their phone number as proven by WhatsApp, so it becomes
``proven_phone``.

Outbound: text (split under 4096 characters), reply buttons (at most 3, titles of at most 20
characters), a list when there are more options or longer titles (at most 10 rows), and approved
templates. Graph error codes are classified into :class:`SendOutcome`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, replace
from typing import Any

import httpx

from bot.channels.base import (
    Button,
    InboundMessage,
    OutboundMessage,
    SendOutcome,
    SendResult,
    Template,
)
from bot.channels.telegram import split_text
from bot.config import WhatsAppSettings

logger = logging.getLogger(__name__)

CHANNEL = "whatsapp"
MAX_TEXT = 4096
MAX_INTERACTIVE_BODY = 1024
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_LIST_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
# The list opener needs a label; a symbol keeps words out of code and reads in every language.
LIST_BUTTON_LABEL = "☰"

# Graph error codes (pywa's errors.py mirrors Meta's table; see the shared channels guide).
# The whole business number is over a limit: the channel pauses (seconds when no Retry-After).
RATE_LIMIT_CODES = {4: 60.0, 80007: 60.0, 130429: 1.0}
# One recipient is over its limit: that chat alone backs off. 131056 is the pair rate limit
# (about one message per 6 s per recipient); 131049 a per-user limit to wait a day out.
RECIPIENT_LIMIT_CODES = {131056: 6.0, 131049: 24 * 3600.0}
OUTSIDE_WINDOW_CODES = {131047}
RETRYABLE_CODES = {1, 2, 131000, 131016}
# The user cannot receive from us: undeliverable (not on WhatsApp, terms not accepted), or they
# stopped our messages. An opt-out from WhatsApp, never retried.
BLOCKED_CODES = {131026, 131050}


def signature_ok(raw_body: bytes, header: str | None, app_secret: str) -> bool:
    """Check ``sha256=<hex HMAC-SHA256(app secret, raw body)>`` in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery status of one of our messages (sent, delivered, read, failed)."""

    message_id: str
    status: str
    recipient: str
    timestamp: str | None
    error_codes: tuple[int, ...] = ()


def parse_webhook(payload: Any) -> tuple[list[InboundMessage], list[StatusUpdate]]:
    """Messages and statuses in one webhook body; raises ValueError when it is not one."""
    items, statuses = split_webhook(payload)
    return [inbound(item) for item in items], statuses


def split_webhook(payload: Any) -> tuple[list[dict[str, Any]], list[StatusUpdate]]:
    """The raw message objects (each one answered on its own) and the statuses of a webhook.

    Raises:
        ValueError: not a WhatsApp Business webhook, or a message without its id or sender.
    """
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise ValueError("not a WhatsApp Business webhook")
    messages: list[dict[str, Any]] = []
    statuses: list[StatusUpdate] = []
    for entry in payload.get("entry") or []:
        for change in entry.get("changes") or []:
            if change.get("field") != "messages":
                continue
            value = change.get("value") or {}
            for item in value.get("messages") or []:
                if not isinstance(item, dict) or not item.get("id") or not item.get("from"):
                    raise ValueError("a message without its id or sender")
                messages.append(item)
            for item in value.get("statuses") or []:
                statuses.append(
                    StatusUpdate(
                        message_id=str(item["id"]),
                        status=str(item["status"]),
                        recipient=str(item.get("recipient_id", "")),
                        timestamp=item.get("timestamp"),
                        error_codes=tuple(
                            int(err["code"]) for err in item.get("errors") or [] if "code" in err
                        ),
                    )
                )
    return messages, statuses


def inbound(item: dict[str, Any]) -> InboundMessage:
    """The :class:`InboundMessage` of one raw message object (from :func:`split_webhook`)."""
    sender = str(item["from"])
    kind = item.get("type")
    text: str | None = None
    callback: str | None = None
    if kind == "text":
        text = str((item.get("text") or {}).get("body", ""))
    elif kind == "interactive":
        interactive = item.get("interactive") or {}
        reply = interactive.get("button_reply") or interactive.get("list_reply") or {}
        text = str(reply.get("id", ""))
        callback = str(item["id"])
    elif kind == "button":
        # A quick-reply button on a template message.
        text = str((item.get("button") or {}).get("payload", ""))
        callback = str(item["id"])
    return InboundMessage(
        channel=CHANNEL,
        sender=sender,
        chat_id=sender,
        text=text,
        message_id=str(item["id"]),
        proven_phone=f"+{sender.lstrip('+')}",
        callback_id=callback,
        metadata={"type": kind},
    )


def _short(title: str, limit: int) -> str:
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


class WhatsAppGateway:
    """Send through ``POST /{version}/{phone_number_id}/messages``."""

    name = CHANNEL

    def __init__(
        self, settings: WhatsAppSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        base = settings.graph_base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=f"{base}/{settings.api_version}/{settings.phone_number_id}",
            headers={"Authorization": f"Bearer {settings.token.get_secret_value()}"},
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def signature_ok(self, raw_body: bytes, header: str | None) -> bool:
        return signature_ok(raw_body, header, self.settings.app_secret.get_secret_value())

    def verify_token_ok(self, token: str | None) -> bool:
        if token is None:
            return False
        expected = self.settings.verify_token.get_secret_value()
        return hmac.compare_digest(expected.encode(), token.encode())

    # -- payloads --------------------------------------------------------------------------
    @staticmethod
    def _base(to: str) -> dict[str, Any]:
        return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}

    def text_payload(self, to: str, body: str) -> dict[str, Any]:
        return {**self._base(to), "type": "text", "text": {"preview_url": False, "body": body}}

    def interactive_payload(
        self, to: str, body: str, buttons: tuple[Button, ...]
    ) -> dict[str, Any]:
        if len(buttons) <= MAX_BUTTONS and all(len(b.title) <= MAX_BUTTON_TITLE for b in buttons):
            action: dict[str, Any] = {
                "buttons": [
                    {"type": "reply", "reply": {"id": b.payload, "title": b.title}} for b in buttons
                ]
            }
            kind = "button"
        else:
            rows = []
            for button in buttons[:MAX_LIST_ROWS]:
                row = {"id": button.payload, "title": _short(button.title, MAX_ROW_TITLE)}
                if len(button.title) > MAX_ROW_TITLE:
                    row["description"] = _short(button.title, MAX_ROW_DESCRIPTION)
                rows.append(row)
            action = {"button": LIST_BUTTON_LABEL, "sections": [{"rows": rows}]}
            kind = "list"
        return {
            **self._base(to),
            "type": "interactive",
            "interactive": {"type": kind, "body": {"text": body}, "action": action},
        }

    def template_payload(self, to: str, template: Template) -> dict[str, Any]:
        body: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
        if template.parameters:
            body["components"] = [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": p} for p in template.parameters],
                }
            ]
        return {**self._base(to), "type": "template", "template": body}

    def payloads(self, message: OutboundMessage) -> list[dict[str, Any]]:
        to = message.recipient.lstrip("+")
        if message.template is not None:
            return [self.template_payload(to, message.template)]
        pieces = split_text(message.text, MAX_TEXT)
        if message.buttons and len(pieces[-1]) > MAX_INTERACTIVE_BODY:
            pieces = pieces[:-1] + split_text(pieces[-1], MAX_INTERACTIVE_BODY)
        if len(message.buttons) > MAX_LIST_ROWS:
            logger.warning(
                "%d options exceed a WhatsApp list; sent the first 10", len(message.buttons)
            )
        out = [self.text_payload(to, piece) for piece in pieces[:-1]]
        if message.buttons:
            out.append(self.interactive_payload(to, pieces[-1], message.buttons))
        else:
            out.append(self.text_payload(to, pieces[-1]))
        return out

    # -- sending ---------------------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> SendResult:
        """Post each payload of ``message`` in turn, from ``message.first_part`` on (the parts
        before it went in an earlier attempt); a failure answers how many parts have gone."""
        payloads = self.payloads(message)
        first = 0 if message.template is not None else min(message.first_part, len(payloads) - 1)
        result = SendResult(SendOutcome.channel_error, error="nothing to send")
        for index in range(first, len(payloads)):
            result = await self._post(payloads[index])
            if result.outcome != SendOutcome.sent:
                logger.warning("whatsapp send %s: %s", result.outcome, result.error)
                return replace(result, parts_sent=index)
        return replace(result, parts_sent=len(payloads))

    async def _post(self, payload: dict[str, Any]) -> SendResult:
        try:
            response = await self._client.post("/messages", json=payload)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return SendResult(SendOutcome.retryable, error=type(exc).__name__)
        except httpx.TransportError as exc:
            # The request left; WhatsApp may or may not have accepted it.
            return SendResult(SendOutcome.unknown, error=type(exc).__name__)
        if response.status_code == 200:
            try:
                message_id = str(response.json()["messages"][0]["id"])
            except (ValueError, KeyError, IndexError, TypeError):
                return SendResult(SendOutcome.unknown, error="unreadable success answer")
            return SendResult(SendOutcome.sent, provider_message_id=message_id)
        return classify_error(response)


def classify_error(response: httpx.Response) -> SendResult:
    """Map a Graph error answer to what the caller may do next.

    Only the codes of a user who cannot receive are ``blocked`` (an opt-out). A revoked token
    (190), a bad parameter (100, 131009), a template error (132xxx), a quality stop (131048,
    131064) and any code not named here are ``channel_error``: nobody is opted out and the
    campaign on this channel stops for an operator to look at. The error kept is the status and
    the code, never Graph's message (it may quote the recipient's number).
    """
    code: int | None = None
    try:
        error = response.json().get("error") or {}
        code = int(error["code"]) if "code" in error else None
    except (ValueError, AttributeError, TypeError):
        error = {}
    label = f"graph {response.status_code} code {code}"
    header = response.headers.get("Retry-After")
    retry_after: float | None
    try:
        retry_after = float(header) if header else None
    except ValueError:
        retry_after = None
    if code in RECIPIENT_LIMIT_CODES:
        wait = retry_after or RECIPIENT_LIMIT_CODES[code]
        return SendResult(SendOutcome.recipient_rate_limited, retry_after=wait, error=label)
    if code in RATE_LIMIT_CODES or response.status_code == 429:
        default = RATE_LIMIT_CODES.get(code or 0, 1.0)
        return SendResult(SendOutcome.rate_limited, retry_after=retry_after or default, error=label)
    if code in OUTSIDE_WINDOW_CODES:
        return SendResult(SendOutcome.outside_window, error=label)
    if code in BLOCKED_CODES:
        return SendResult(SendOutcome.blocked, error=label)
    if code in RETRYABLE_CODES or response.status_code >= 500:
        return SendResult(SendOutcome.retryable, error=label)
    return SendResult(SendOutcome.channel_error, error=label)
