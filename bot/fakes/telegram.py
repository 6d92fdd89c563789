"""A fake Telegram Bot API server: ``/bot<token>/<method>`` plus ``/_fake/*`` controls.

Implements what Kopa uses: getMe, sendMessage (inline keyboards, reply keyboards with
``request_contact``), answerCallbackQuery, editMessageText, setWebhook, deleteWebhook,
getWebhookInfo and getUpdates (long polling, ``offset`` confirms). Answers have the real shape
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description", "parameters"}``.

``POST /_fake/deliver`` takes a full Update (``update_id`` is assigned when missing) or a
shorthand ``{"user_id", "text"|"contact"|"callback_data", "first_name"?, "language_code"?}``. With
a webhook set it is POSTed there with ``X-Telegram-Bot-Api-Secret-Token``; otherwise it waits in
the getUpdates queue.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.fakes.common import FakeState, control_router, parse_params, request_params

FAULT_KINDS = frozenset(
    {
        "rate_limit",
        "server_error",
        "timeout",
        "blocked",
        "deactivated",
        "chat_not_found",
        "invalid_token",
        "kicked",
    }
)
# Methods that address a chat: the ones faults and the rate limit apply to.
MESSAGE_METHODS = frozenset({"sendMessage", "editMessageText"})
BOT_USER = {
    "id": 7000000001,
    "is_bot": True,
    "first_name": "Kopa",
    "username": "kopa_fake_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64


@dataclass(frozen=True)
class Answer:
    """A Bot API answer: its HTTP status and JSON body."""

    status: int
    body: dict[str, Any]


def ok(result: Any) -> Answer:
    return Answer(200, {"ok": True, "result": result})


def error(code: int, description: str, retry_after: int | None = None) -> Answer:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return Answer(code, body)


def _json_field(value: Any) -> Any:
    """PTB sends nested objects as JSON strings inside a form body."""
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def user(
    user_id: int, first_name: str = "Test", language_code: str | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code:
        data["language_code"] = language_code
    return data


def private_chat(user_id: int, first_name: str = "Test") -> dict[str, Any]:
    return {"id": user_id, "type": "private", "first_name": first_name}


def text_update(
    user_id: int, text: str, *, first_name: str = "Test", language_code: str | None = None
) -> dict[str, Any]:
    """An Update carrying a private text message (``update_id`` left for the server)."""
    return {
        "message": {
            "message_id": 0,
            "date": int(time.time()),
            "from": user(user_id, first_name, language_code),
            "chat": private_chat(user_id, first_name),
            "text": text,
        }
    }


def contact_update(
    user_id: int,
    phone_number: str,
    *,
    contact_user_id: int | None,
    first_name: str = "Test",
    language_code: str | None = None,
) -> dict[str, Any]:
    """An Update carrying a shared contact; ``contact_user_id`` says whose contact it is."""
    contact: dict[str, Any] = {"phone_number": phone_number, "first_name": first_name}
    if contact_user_id is not None:
        contact["user_id"] = contact_user_id
    return {
        "message": {
            "message_id": 0,
            "date": int(time.time()),
            "from": user(user_id, first_name, language_code),
            "chat": private_chat(user_id, first_name),
            "contact": contact,
        }
    }


def callback_update(
    user_id: int,
    data: str,
    *,
    message_id: int = 1,
    first_name: str = "Test",
    language_code: str | None = None,
) -> dict[str, Any]:
    """An Update for an inline-button press on one of the bot's messages."""
    return {
        "callback_query": {
            "id": f"cq{user_id}{int(time.time() * 1000)}",
            "from": user(user_id, first_name, language_code),
            "chat_instance": str(user_id),
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "from": BOT_USER,
                "chat": private_chat(user_id, first_name),
                "text": "…",
            },
        }
    }


def shorthand_update(body: dict[str, Any]) -> dict[str, Any]:
    user_id = int(body["user_id"])
    first_name = str(body.get("first_name", "Test"))
    language_code = body.get("language_code")
    if "callback_data" in body:
        return callback_update(
            user_id, str(body["callback_data"]), first_name=first_name, language_code=language_code
        )
    if "contact" in body:
        contact = body["contact"]
        return contact_update(
            user_id,
            str(contact["phone_number"]),
            contact_user_id=contact.get("user_id"),
            first_name=first_name,
            language_code=language_code,
        )
    return text_update(
        user_id, str(body["text"]), first_name=first_name, language_code=language_code
    )


class FakeTelegram:
    """State and app of one fake Bot API server."""

    def __init__(self) -> None:
        self.state = FakeState(fault_kinds=FAULT_KINDS)
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.pending: list[dict[str, Any]] = []
        self._update_ids = itertools.count(100_000)
        self._message_ids: dict[str, itertools.count[int]] = {}
        self._new_update = asyncio.Condition()
        self.app = self._build_app()

    # -- helpers ---------------------------------------------------------------------------
    def _next_message_id(self, chat_id: str) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def sent_texts(self, chat_id: int | str | None = None) -> list[str]:
        """Texts of successful sendMessage calls, optionally to one chat."""
        recipient = None if chat_id is None else str(chat_id)
        return [
            entry["payload"]["text"]
            for entry in self.state.query("sendMessage", recipient)
            if entry["outcome"] == "ok"
        ]

    def _message(self, chat_id: str, text: str, reply_markup: Any) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": int(chat_id), "type": "private"}
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": chat,
            "from": BOT_USER,
            "text": text,
        }
        if isinstance(reply_markup, dict) and "inline_keyboard" in reply_markup:
            message["reply_markup"] = reply_markup
        return message

    async def deliver(self, update: dict[str, Any]) -> dict[str, Any]:
        update = dict(update)
        update.setdefault("update_id", next(self._update_ids))
        if self.webhook_url is None:
            async with self._new_update:
                self.pending.append(update)
                self._new_update.notify_all()
            return {"update_id": update["update_id"], "mode": "queued"}
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                self.webhook_url, content=json.dumps(update), headers=headers
            )
        return {"update_id": update["update_id"], "mode": "webhook", "status": response.status_code}

    # -- methods ---------------------------------------------------------------------------
    async def _fault_response(self, entry: dict[str, Any], chat_id: str | None) -> Answer | None:
        fault = self.state.take_fault(chat_id)
        if fault is not None:
            entry["outcome"] = fault.kind
            if fault.kind == "rate_limit":
                return error(
                    429, f"Too Many Requests: retry after {fault.retry_after}", fault.retry_after
                )
            if fault.kind == "server_error":
                reason = "Bad Gateway" if fault.status == 502 else "Internal Server Error"
                return error(fault.status, reason)
            if fault.kind == "blocked":
                return error(403, "Forbidden: bot was blocked by the user")
            if fault.kind == "deactivated":
                return error(403, "Forbidden: user is deactivated")
            if fault.kind == "kicked":
                return error(403, "Forbidden: bot was kicked from the group chat")
            if fault.kind == "chat_not_found":
                return error(400, "Bad Request: chat not found")
            if fault.kind == "invalid_token":  # a revoked token
                return error(401, "Unauthorized")
            # timeout: the message is delivered, but the answer comes too late for the client.
            entry["outcome"] = "ok"
            await asyncio.sleep(fault.delay)
            return None
        if self.state.over_rate_limit():
            entry["outcome"] = "rate_limited"
            return error(429, "Too Many Requests: retry after 1", 1)
        return None

    async def _send_message(self, params: dict[str, Any], entry: dict[str, Any]) -> Answer:
        chat_id = str(params.get("chat_id", ""))
        text = str(params.get("text", ""))
        markup = _json_field(params.get("reply_markup"))
        if not chat_id:
            entry["outcome"] = "bad_request"
            return error(400, "Bad Request: chat_id is empty")
        if not text.strip():
            entry["outcome"] = "bad_request"
            return error(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            entry["outcome"] = "bad_request"
            return error(400, "Bad Request: message is too long")
        if isinstance(markup, dict):
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if len(str(button.get("callback_data", "")).encode()) > MAX_CALLBACK_DATA:
                        entry["outcome"] = "bad_request"
                        return error(400, "Bad Request: BUTTON_DATA_INVALID")
        faulted = await self._fault_response(entry, chat_id)
        if faulted is not None:
            return faulted
        entry["outcome"] = "ok"
        message = self._message(chat_id, text, markup)
        entry["message_id"] = message["message_id"]
        return ok(message)

    async def _get_updates(self, params: dict[str, Any]) -> Answer:
        if self.webhook_url is not None:
            return error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        async with self._new_update:
            if offset:
                # Confirming: every update below the offset is forgotten.
                self.pending = [u for u in self.pending if u["update_id"] >= offset]
            if not self.pending and timeout > 0:
                try:
                    await asyncio.wait_for(self._new_update.wait(), timeout)
                except TimeoutError:
                    pass
            return ok(self.pending[:limit])

    def _build_app(self) -> ASGIApp:
        app = FastAPI(title="fake Telegram Bot API")
        app.include_router(control_router(self.state))

        @app.post("/_fake/deliver")
        async def deliver(request: Request) -> Any:
            body = await request.json()
            full = "message" in body or "callback_query" in body
            update = body if full else shorthand_update(body)
            return await self.deliver(update)

        return _BotApiFirst(self._bot_api, app)

    async def _bot_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/bot<token>/<method>`` as a bare ASGI app.

        The notifier benchmark runs this fake at 1000 requests/s on the same two cores as the
        workers it measures; Starlette's request and response objects and FastAPI's middleware
        took about a third of its CPU per request, CPU the workers then lacked to keep their send
        slots.
        """
        _, bot, method = ([*scope["path"].split("/", 2), "", ""])[:3]
        if not bot.startswith("bot") or not method or "/" in method:
            answer = error(404, "Not Found")
        else:
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            headers = dict(scope["headers"])
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            raw = parse_params(scope["query_string"], content_type, body)
            if raw is None:  # a multipart form: Starlette's parser
                raw = await request_params(Request(scope, _replay(body)))
            answer = await self._bot_method(method, raw)
        payload = json.dumps(answer.body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _bot_method(self, method: str, raw: dict[str, Any]) -> Answer:
        params = {key: _json_field(value) for key, value in raw.items()}
        chat_id = str(params["chat_id"]) if "chat_id" in params else None
        entry = self.state.record(method, chat_id, params)
        if method == "getMe":
            entry["outcome"] = "ok"
            return ok(BOT_USER)
        if method == "sendMessage":
            return await self._send_message(params, entry)
        if method == "editMessageText":
            faulted = await self._fault_response(entry, chat_id)
            if faulted is not None:
                return faulted
            entry["outcome"] = "ok"
            text = str(params.get("text", ""))
            message = self._message(chat_id or "0", text, params.get("reply_markup"))
            message["message_id"] = int(params.get("message_id", message["message_id"]))
            return ok(message)
        if method == "answerCallbackQuery":
            entry["outcome"] = "ok"
            return ok(True)
        if method == "setWebhook":
            secret = params.get("secret_token")
            if secret is not None and not _SECRET_RE.match(str(secret)):
                entry["outcome"] = "bad_request"
                return error(400, "Bad Request: secret token contains unallowed characters")
            self.webhook_url = str(params.get("url") or "") or None
            self.webhook_secret = None if secret is None else str(secret)
            if str(params.get("drop_pending_updates", "")).lower() == "true":
                self.pending.clear()
            entry["outcome"] = "ok"
            entry["payload"] = {k: v for k, v in params.items() if k != "secret_token"}
            return ok(True)
        if method == "deleteWebhook":
            self.webhook_url = None
            self.webhook_secret = None
            if str(params.get("drop_pending_updates", "")).lower() == "true":
                self.pending.clear()
            entry["outcome"] = "ok"
            return ok(True)
        if method == "getWebhookInfo":
            entry["outcome"] = "ok"
            return ok(
                {
                    "url": self.webhook_url or "",
                    "has_custom_certificate": False,
                    "pending_update_count": len(self.pending),
                }
            )
        if method == "getUpdates":
            entry["outcome"] = "ok"
            return await self._get_updates(params)
        entry["outcome"] = "not_found"
        return error(404, "Not Found: method not found")


def _replay(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class _BotApiFirst:
    """Bot API calls go to a bare ASGI handler, the rest (``/_fake/...``) to FastAPI."""

    def __init__(self, bot_api: ASGIApp, rest: ASGIApp) -> None:
        self._bot_api = bot_api
        self._rest = rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/bot"):
            await self._bot_api(scope, receive, send)
        else:
            await self._rest(scope, receive, send)


def create_app() -> ASGIApp:
    return FakeTelegram().app
