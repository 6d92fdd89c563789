"""A fake WhatsApp Cloud API (Graph) server: ``POST /{version}/{phone_number_id}/messages``.

Accepts text, interactive (reply buttons, lists) and template messages, validates the limits the
real API enforces (4096-character text, at most 3 buttons with titles of at most 20 characters,
lists of at most 10 rows) and answers ``{"messaging_product", "contacts", "messages": [{"id"}]}``
or a Graph error body with Meta's codes (130429 throughput, 131047 re-engagement, 131026
undeliverable, 131056 pair rate limit, 131000 generic failure).

``POST /_fake/deliver`` signs a webhook payload with the app secret (``X-Hub-Signature-256`` over
the exact bytes sent) and POSTs it to the gateway. It takes a full payload (``{"object":
"whatsapp_business_account", ...}``) or a shorthand: ``{"from", "text"}``, ``{"from",
"button_id", "button_title"}`` or ``{"status", "message_id", "recipient_id"}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import secrets
import time
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from bot.fakes.common import FakeState, control_router

FAULT_KINDS = frozenset(
    {
        "rate_limit",
        "server_error",
        "timeout",
        "blocked",
        "undeliverable",
        "outside_window",
        "pair_rate_limit",
        "stopped_marketing",
        "invalid_token",
        "template_error",
        "unknown_code",
    }
)
MAX_TEXT = 4096
MAX_INTERACTIVE_BODY = 1024
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_LIST_ROWS = 10
MAX_ROW_TITLE = 24
BUSINESS_PHONE_NUMBER_ID = "100000000000001"
BUSINESS_ACCOUNT_ID = "200000000000002"
DISPLAY_PHONE = "15550001111"

_GRAPH_ERRORS: dict[str, tuple[int, int, str, str]] = {
    # kind: (http status, code, message, details)
    "rate_limit": (429, 130429, "Rate limit hit", "Cloud API message throughput has been reached."),
    "pair_rate_limit": (
        400,
        131056,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient phone number "
        "in a short period of time.",
    ),
    "outside_window": (
        400,
        131047,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last "
        "replied to this number.",
    ),
    "undeliverable": (400, 131026, "Message Undeliverable", "Message Undeliverable."),
    "blocked": (400, 131026, "Message Undeliverable", "Message Undeliverable."),
    "invalid": (400, 131009, "Parameter value is not valid", ""),
    "stopped_marketing": (400, 131050, "Unable to deliver the message", "User stopped marketing."),
    "invalid_token": (401, 190, "Invalid OAuth access token", "Error validating access token."),
    "template_error": (
        400,
        132001,
        "Template name does not exist in the translation",
        "template name does not exist in the language",
    ),
    "unknown_code": (400, 135999, "A code this fake makes up", ""),
}


def graph_error(
    status: int, code: int, message: str, details: str = "", retry_after: int | None = None
) -> JSONResponse:
    body = {
        "error": {
            "message": f"({'#'}{code}) {message}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details or message},
            "error_subcode": 2494010 if code == 131047 else None,
            "fbtrace_id": secrets.token_urlsafe(12),
        }
    }
    if body["error"]["error_subcode"] is None:
        del body["error"]["error_subcode"]
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers)


def sign(body: bytes, app_secret: str) -> str:
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _envelope(value: dict[str, Any]) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": DISPLAY_PHONE,
            "phone_number_id": BUSINESS_PHONE_NUMBER_ID,
        },
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": BUSINESS_ACCOUNT_ID, "changes": [{"value": value, "field": "messages"}]}],
    }


def text_payload(
    wa_id: str, text: str, *, name: str = "Test", message_id: str | None = None
) -> dict[str, Any]:
    """A webhook payload carrying one inbound text message from ``wa_id``."""
    return _envelope(
        {
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": message_id or f"wamid.in{secrets.token_hex(12)}",
                    "timestamp": str(int(time.time())),
                    "type": "text",
                    "text": {"body": text},
                }
            ],
        }
    )


def button_payload(
    wa_id: str,
    button_id: str,
    title: str = "",
    *,
    name: str = "Test",
    message_id: str | None = None,
) -> dict[str, Any]:
    """A webhook payload for a reply-button press (``interactive.button_reply``)."""
    return _envelope(
        {
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": message_id or f"wamid.in{secrets.token_hex(12)}",
                    "timestamp": str(int(time.time())),
                    "type": "interactive",
                    "interactive": {
                        "type": "button_reply",
                        "button_reply": {"id": button_id, "title": title or button_id[:20]},
                    },
                }
            ],
        }
    )


def status_payload(
    message_id: str, status: str, recipient_id: str, *, error_code: int | None = None
) -> dict[str, Any]:
    """A status webhook (sent, delivered, read, failed) for one of our outbound messages."""
    entry: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient_id,
    }
    if status == "failed":
        entry["errors"] = [
            {
                "code": error_code or 131026,
                "title": "Message undeliverable.",
                "message": "Message undeliverable.",
                "error_data": {"details": "Message Undeliverable."},
            }
        ]
    return _envelope({"statuses": [entry]})


def shorthand_payload(body: dict[str, Any]) -> dict[str, Any]:
    if "status" in body:
        return status_payload(
            str(body["message_id"]),
            str(body["status"]),
            str(body["recipient_id"]),
            error_code=body.get("error_code"),
        )
    if "button_id" in body:
        return button_payload(
            str(body["from"]), str(body["button_id"]), str(body.get("button_title", ""))
        )
    return text_payload(str(body["from"]), str(body["text"]), name=str(body.get("name", "Test")))


def _interactive_error(interactive: dict[str, Any]) -> str | None:
    """What the Cloud API would refuse in an ``interactive`` message (buttons or a list)."""
    body = str(interactive.get("body", {}).get("text", ""))
    if not body or len(body) > MAX_INTERACTIVE_BODY:
        return "interactive.body.text must be 1-1024 characters"
    action = interactive.get("action", {})
    if interactive.get("type") == "button":
        buttons = action.get("buttons", [])
        if not 1 <= len(buttons) <= MAX_BUTTONS:
            return "buttons must have 1-3 items"
        for button in buttons:
            if len(button.get("reply", {}).get("title", "")) > MAX_BUTTON_TITLE:
                return "button title is longer than 20 characters"
    elif interactive.get("type") == "list":
        sections = action.get("sections", [])
        rows = [row for section in sections for row in section.get("rows", [])]
        if not 1 <= len(rows) <= MAX_LIST_ROWS:
            return "list must have 1-10 rows"
        if any(len(row.get("title", "")) > MAX_ROW_TITLE for row in rows):
            return "row title is longer than 24 characters"
        if len(action.get("button", "")) > MAX_BUTTON_TITLE:
            return "list button is longer than 20 characters"
    else:
        return "unsupported interactive type"
    return None


class ConfigSpec(BaseModel):
    webhook_url: str | None = None
    app_secret: str | None = None
    auto_status: bool | None = None


class FakeWhatsApp:
    """State and app of one fake Cloud API server."""

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        app_secret: str | None = None,
        auto_status: bool = False,
    ) -> None:
        self.state = FakeState(fault_kinds=FAULT_KINDS)
        self.webhook_url = webhook_url
        self.app_secret = app_secret
        # When on, every accepted message is followed by "sent" and "delivered" status webhooks.
        self.auto_status = auto_status
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self.app = self._build_app()

    async def _report_statuses(self, wamid: str, wa_id: str) -> None:
        for state in ("sent", "delivered"):
            await self.deliver(status_payload(wamid, state, wa_id))

    def sent_messages(self, wa_id: str | None = None) -> list[dict[str, Any]]:
        """Payloads of accepted messages, optionally to one recipient."""
        return [
            entry["payload"]
            for entry in self.state.query("messages", wa_id)
            if entry["outcome"] == "ok"
        ]

    def sent_texts(self, wa_id: str | None = None) -> list[str]:
        """The human-readable body of each accepted message (text or interactive body)."""
        texts = []
        for payload in self.sent_messages(wa_id):
            if payload.get("type") == "text":
                texts.append(payload["text"]["body"])
            elif payload.get("type") == "interactive":
                texts.append(payload["interactive"]["body"]["text"])
            elif payload.get("type") == "template":
                texts.append(f"template:{payload['template']['name']}")
        return texts

    async def deliver(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.webhook_url:
            return {"delivered": False, "reason": "no webhook_url configured"}
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self.app_secret:
            headers["X-Hub-Signature-256"] = sign(body, self.app_secret)
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(self.webhook_url, content=body, headers=headers)
        return {"delivered": True, "status": response.status_code}

    def _validate(self, payload: dict[str, Any]) -> str | None:
        if payload.get("messaging_product") != "whatsapp":
            return "messaging_product must be whatsapp"
        if not payload.get("to"):
            return "to is required"
        kind = payload.get("type", "text")
        if kind == "text":
            body = str(payload.get("text", {}).get("body", ""))
            if not body or len(body) > MAX_TEXT:
                return "text.body must be 1-4096 characters"
        elif kind == "interactive":
            return _interactive_error(payload.get("interactive", {}))
        elif kind == "template":
            template = payload.get("template", {})
            if not template.get("name") or not template.get("language", {}).get("code"):
                return "template.name and template.language.code are required"
        else:
            return f"unsupported type {kind}"
        return None

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="fake WhatsApp Cloud API")
        app.include_router(control_router(self.state))

        @app.put("/_fake/config")
        async def configure(spec: ConfigSpec) -> dict[str, Any]:
            if spec.webhook_url is not None:
                self.webhook_url = spec.webhook_url
            if spec.app_secret is not None:
                self.app_secret = spec.app_secret
            if spec.auto_status is not None:
                self.auto_status = spec.auto_status
            return {"ok": True}

        @app.post("/_fake/deliver")
        async def deliver(request: Request) -> Any:
            body = await request.json()
            payload = body if "object" in body else shorthand_payload(body)
            return await self.deliver(payload)

        @app.post("/{version}/{phone_number_id}/messages")
        async def messages(version: str, phone_number_id: str, request: Request) -> JSONResponse:
            if not request.headers.get("authorization", "").startswith("Bearer "):
                return graph_error(401, 190, "Invalid OAuth access token")
            try:
                payload = await request.json()
            except ValueError:
                return graph_error(400, 100, "Invalid parameter", "body is not JSON")
            to = str(payload.get("to", "")).lstrip("+")
            entry = self.state.record("messages", to, payload)
            entry["phone_number_id"] = phone_number_id
            problem = self._validate(payload)
            if problem is not None:
                entry["outcome"] = "invalid"
                return graph_error(400, 131009, "Parameter value is not valid", problem)
            fault = self.state.take_fault(to)
            if fault is not None:
                entry["outcome"] = fault.kind
                if fault.kind == "server_error":
                    return graph_error(fault.status, 131000, "Something went wrong", "")
                if fault.kind == "timeout":
                    entry["outcome"] = "ok"
                    await asyncio.sleep(fault.delay)
                else:
                    status, code, message, details = _GRAPH_ERRORS[fault.kind]
                    retry = fault.retry_after if fault.kind == "rate_limit" else None
                    return graph_error(status, code, message, details, retry)
            elif self.state.over_rate_limit():
                entry["outcome"] = "rate_limited"
                status, code, message, details = _GRAPH_ERRORS["rate_limit"]
                return graph_error(status, code, message, details, 1)
            else:
                entry["outcome"] = "ok"
            wamid = f"wamid.fake{next(self._ids):012d}"
            entry["message_id"] = wamid
            if self.auto_status:
                # Meta reports statuses after answering the send, so do the same.
                task = asyncio.create_task(self._report_statuses(wamid, to))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return JSONResponse(
                {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": payload.get("to"), "wa_id": to}],
                    "messages": [{"id": wamid}],
                }
            )

        return app


def create_app() -> FastAPI:
    return FakeWhatsApp().app
