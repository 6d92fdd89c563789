"""The gateway web app: Telegram and WhatsApp webhooks in, replies out through the gateways.

Every webhook is authenticated before anything else (Telegram's secret-token header, WhatsApp's
HMAC over the raw body, both compared in constant time), must be a POST of JSON, is bounded in
size and parsed defensively (a bad body is a 4xx, never a 500). Each chat update is then stored in
the durable inbox (:mod:`bot.inbox`) and only then acknowledged with 200: when the database cannot
store it the provider gets a 503 and delivers it again. Inbox workers in every gateway process
answer the stored updates, one chat's updates one at a time in arrival order, and mark each done
once its reply has been handed to the channel; a turn cut short by a crash is replayed.

Officer button presses (``case:...``) go to :mod:`bot.officers`, everything else to the
conversation service, which answers "try again shortly" when Rasa, the action server or the loan
API is down or slow.

Logs name channels, outcomes and exception types only: never what someone wrote, their phone
number, or a token (Telegram's sits in every Bot API URL, so httpx's request log is silenced and
a filter redacts configured secrets from anything else).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import PlainTextResponse

from bot import officers as officer_actions
from bot.channels.base import InboundMessage, OutboundMessage, SendOutcome
from bot.channels.registry import Channels, build_channels
from bot.channels.whatsapp import StatusUpdate, inbound, split_webhook
from bot.config import BotSettings, get_bot_settings
from bot.dedupe import Deduper, build_deduper
from bot.inbox import ClaimedItem, Inbox, InboxItem
from i18n import render
from i18n.messages.common import TRY_AGAIN_KEY

logger = logging.getLogger(__name__)


UNSUPPORTED_KEY = "channels.unsupported_message"


class Conversation(Protocol):
    async def handle(self, inbound: InboundMessage) -> list[OutboundMessage]: ...


class StatusSink(Protocol):
    async def record(self, status: StatusUpdate) -> None: ...


class RedactSecrets(logging.Filter):
    """Replace configured secrets in log records (formatted message and arguments)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for secret in self._secrets:
            redacted = redacted.replace(secret, "[redacted]")
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


def install_log_redaction(settings: BotSettings) -> RedactSecrets:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # PTB logs whole updates and Bot API parameters (message texts, phone numbers) at DEBUG.
    for chatty in ("telegram", "httpcore", "hpack"):
        logging.getLogger(chatty).setLevel(logging.INFO)
    redactor = RedactSecrets(
        [
            settings.telegram.token.get_secret_value(),
            settings.telegram.webhook_secret.get_secret_value(),
            settings.whatsapp.token.get_secret_value(),
            settings.whatsapp.app_secret.get_secret_value(),
            settings.whatsapp.verify_token.get_secret_value(),
            settings.service_token.get_secret_value(),
        ]
    )
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(redactor)
    return redactor


class LedgerStatusSink:
    """Append WhatsApp delivery statuses to the contact ledger (``api.ledger.service``)."""

    def __init__(self, database_url: str) -> None:
        from api.core.db import build_engine

        # A read then a write: on SQLite the write lock is taken up front so a concurrent writer
        # (the inbox) makes this wait instead of failing the upgrade with "database is locked".
        self._engine = build_engine(database_url, sqlite_immediate=True)

    async def record(self, status: StatusUpdate) -> None:
        await asyncio.to_thread(self._record, status)

    def _record(self, status: StatusUpdate) -> None:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from api.ledger import service as ledger
        from api.outbox.models import OutboxMessage

        with Session(self._engine) as session:
            row = session.scalar(
                select(OutboxMessage).where(OutboxMessage.provider_message_id == status.message_id)
            )
            ledger.record(
                session=session,
                at=_status_time(status.timestamp),
                direction="outbound",
                kind="status",
                decision=status.status,
                rule=None,
                borrower_id=row.borrower_id if row else None,
                loan_id=row.loan_id if row else None,
                case_id=row.case_id if row else None,
                channel="whatsapp",
                message_key=row.message_key if row else None,
                external_message_id=status.message_id,
                detail={"error_codes": list(status.error_codes)} if status.error_codes else {},
            )
            session.commit()

    async def aclose(self) -> None:
        self._engine.dispose()


def _status_time(timestamp: str | None) -> datetime:
    try:
        return datetime.fromtimestamp(int(timestamp or ""), tz=UTC)
    except ValueError:
        return datetime.now(UTC)


class InboundRouter:
    """Store inbound updates, answer them from the inbox, send the replies."""

    def __init__(
        self,
        *,
        channels: Channels,
        conversation: Conversation,
        officers: officer_actions.OfficerDesk | None,
        deduper: Deduper,
        inbox: Inbox,
        status_sink: StatusSink | None = None,
        deadline_seconds: float = 10.0,
        workers: int = 16,
        poll_seconds: float = 0.5,
    ) -> None:
        self.channels = channels
        self.conversation = conversation
        self.officers = officers
        self.deduper = deduper
        self.inbox = inbox
        self.status_sink = status_sink
        self.deadline = deadline_seconds
        self._workers = workers
        self._poll = poll_seconds
        # One token per stored update wakes one idle worker; the rest wait for the poll.
        self._wake: asyncio.Queue[None] = asyncio.Queue()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []

    # -- storing -------------------------------------------------------------------------
    async def first_time(self, key: str) -> bool:
        try:
            return await self.deduper.first_time(key)
        except Exception as exc:  # a dedupe outage must not silence borrowers
            logger.warning("dedupe store unavailable (%s); processing anyway", type(exc).__name__)
            return True

    async def _seen(self, key: str) -> bool:
        try:
            return await self.deduper.seen(key)
        except Exception as exc:  # the inbox's unique key still refuses a second copy
            logger.warning("dedupe store unavailable (%s); the inbox decides", type(exc).__name__)
            return False

    async def _remember(self, key: str) -> None:
        try:
            await self.deduper.remember(key)
        except Exception as exc:
            logger.warning("dedupe store unavailable (%s); not remembered", type(exc).__name__)

    async def accept(self, items: Sequence[InboxItem]) -> None:
        """Store ``items`` durably (raises when the database cannot) and wake the workers."""
        unseen = [item for item in items if not await self._seen(item.key)]
        fresh = await self.inbox.accept(unseen)
        for item, new in zip(unseen, fresh, strict=True):
            await self._remember(item.key)
            if new:
                self._wake.put_nowait(None)

    async def accept_telegram(self, data: dict[str, Any]) -> None:
        """Store one Telegram update (webhook body or polled); raises ValueError if malformed."""
        telegram = self.channels.telegram
        assert telegram is not None
        update = telegram.parse(data)
        chat = telegram.chat_key(update)
        if chat is None:
            return  # edits, member updates, polls: nothing to answer
        await self.accept([InboxItem(f"tg:{update.update_id}", "telegram", chat, data)])

    # -- answering -----------------------------------------------------------------------
    def start(self) -> None:
        self._loops = [asyncio.create_task(self._dispatch())]

    async def stop(self, seconds: float = 10.0) -> None:
        """Let the turns in progress finish (up to ``seconds``), then stop claiming."""
        self._stopping = True
        self._wake.put_nowait(None)
        await asyncio.gather(*self._loops, return_exceptions=True)
        await self.drain(seconds)

    async def _dispatch(self) -> None:
        """Claim rows one at a time while a worker slot is free; each turn runs as its own task.

        One claim loop per process: an idle gateway asks the database once per poll interval,
        and a finished turn wakes it at once (its chat's next row may be waiting).
        """
        slots = asyncio.Semaphore(self._workers)
        while not self._stopping:
            await slots.acquire()
            try:
                item = await self.inbox.claim()
            except Exception as exc:  # the database is down: try again after the poll
                logger.error("inbox claim failed: %s", type(exc).__name__)
                item = None
            if item is None:
                slots.release()
                try:
                    await asyncio.wait_for(self._wake.get(), self._poll)
                except TimeoutError:
                    pass
                while not self._wake.empty():  # one claim looks at every stored row
                    self._wake.get_nowait()
                continue
            task = asyncio.create_task(self._answer_item(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(lambda _task: self._turn_over(slots))

    def _turn_over(self, slots: asyncio.Semaphore) -> None:
        slots.release()
        self._wake.put_nowait(None)  # the chat's next row may be waiting

    async def _answer_item(self, item: ClaimedItem) -> None:
        if item.attempts > self.inbox.max_attempts:
            logger.error("inbox row %s given up after %d attempts", item.id, item.attempts - 1)
            await self._finish(item, dead=True)
            return
        heartbeat = asyncio.create_task(self._keep_lease(item.id))
        try:
            await self.answer(item.channel, item.payload)
        except Exception as exc:  # a bug in one update must not stop the others
            logger.error("answering a %s update failed: %s", item.channel, type(exc).__name__)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        await self._finish(item, dead=False)

    async def _finish(self, item: ClaimedItem, *, dead: bool) -> None:
        try:
            await self.inbox.finish(item.id, dead=dead)
        except Exception as exc:  # left working: replayed once the lease runs out
            logger.error("inbox row %s not marked done: %s", item.id, type(exc).__name__)

    async def _keep_lease(self, item_id: int) -> None:
        interval = self.inbox.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.inbox.renew(item_id)
            except Exception as exc:
                logger.warning("inbox lease not renewed: %s", type(exc).__name__)

    async def answer(self, channel: str, payload: dict[str, Any]) -> None:
        """Answer one stored update: forward it, or send the gateway's own line, or nothing."""
        interpretation: InboundMessage | OutboundMessage | None
        if channel == "telegram" and self.channels.telegram is not None:
            interpretation = await self.channels.telegram.interpret(payload)
        elif channel == "whatsapp":
            interpretation = inbound(payload)
        else:
            logger.error("an inbox row of an unknown channel: %s", channel)
            return
        if isinstance(interpretation, OutboundMessage):
            await self._send(channel, [interpretation])
        elif interpretation is not None:
            await self.handle(interpretation)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, seconds: float = 10.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=seconds)

    async def handle(self, inbound: InboundMessage) -> None:
        """Answer one inbound message; never raises."""
        try:
            replies = await self._replies(inbound)
        except Exception as exc:  # the borrower still hears back
            logger.error("handling a %s message failed: %s", inbound.channel, type(exc).__name__)
            replies = [self._say(inbound, TRY_AGAIN_KEY)]
        await self._send(inbound.channel, replies)

    async def _send(self, channel: str, replies: list[OutboundMessage]) -> None:
        gateway = self.channels.gateways.get(channel)
        if gateway is None:
            return
        for reply in replies:
            result = await gateway.send(reply)
            if result.outcome != SendOutcome.sent:
                logger.warning("reply on %s not sent: %s", channel, result.outcome)
                break

    async def _replies(self, inbound: InboundMessage) -> list[OutboundMessage]:
        if inbound.text is None:
            return [self._say(inbound, UNSUPPORTED_KEY)]
        if officer_actions.is_officer_action(inbound):
            # Officer buttons never reach Rasa, whoever pressed them.
            if self.officers is None:
                return [self._say(inbound, "officer.not_an_officer")]
            return await asyncio.wait_for(self.officers.handle(inbound), self.deadline)
        try:
            return await asyncio.wait_for(self.conversation.handle(inbound), self.deadline)
        except TimeoutError:
            logger.warning("conversation timed out for a %s message", inbound.channel)
            return [self._say(inbound, TRY_AGAIN_KEY)]

    @staticmethod
    def _say(inbound: InboundMessage, key: str) -> OutboundMessage:
        return OutboundMessage(
            channel=inbound.channel,
            recipient=inbound.chat_id,
            text=render(key, inbound.locale_hint),
        )

    async def record_status(self, status: StatusUpdate) -> None:
        if self.status_sink is None:
            return
        if not await self.first_time(f"wa:status:{status.message_id}:{status.status}"):
            return
        try:
            await self.status_sink.record(status)
        except Exception as exc:  # a ledger outage must not fail the webhook
            logger.error("recording a WhatsApp status failed: %s", type(exc).__name__)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, "bad content-length")
        if int(declared) > limit:
            raise HTTPException(413, "body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, "body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the parser's stack (a few KB of "[[[[").
        raise HTTPException(400, "body is not JSON") from exc
    if not isinstance(data, dict):
        raise HTTPException(400, "body is not a JSON object")
    return data


def worker_name() -> str:
    """This process in ``inbox_message.worker``: host, pid and a nonce (pids are reused)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def require_json(request: Request) -> None:
    """Refuse a body that is not declared JSON (providers always send ``application/json``)."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        raise HTTPException(415, "expected application/json")


def create_app(  # noqa: C901 - the one wiring point: its routes are closures over what it builds
    settings: BotSettings | None = None,
    *,
    conversation: Conversation | None = None,
    officers: officer_actions.OfficerDesk | None = None,
    deduper: Deduper | None = None,
    status_sink: StatusSink | None = None,
    telegram_polling: bool = False,
) -> FastAPI:
    """Build the gateway app; what is not passed in is built from ``settings``."""
    cfg = settings or get_bot_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_log_redaction(cfg)
        owned: list[Any] = []
        convo = conversation
        if convo is None:
            from bot.conversation import ChatRegistry, ConversationService
            from bot.rasa_client import turn_timeout
            from bot.rasa_pool import RasaPool, rasa_urls, resolve_replicas

            named = rasa_urls(cfg.rasa_url)
            pool = RasaPool(
                named,
                timeout=turn_timeout(cfg.reply_deadline_seconds),
                concurrency=cfg.rasa_concurrency,
                queue_seconds=cfg.rasa_queue_seconds,
                discover=(lambda: resolve_replicas(named[0]))
                if cfg.rasa_discovery == "dns"
                else None,
            )
            service = ConversationService(
                pool,
                ChatRegistry(cfg.api_url, cfg.service_token.get_secret_value()),
                deadline_seconds=cfg.reply_deadline_seconds + cfg.rasa_queue_seconds,
            )
            owned.append(service)
            convo = service
        desk = officers
        if desk is None:
            desk = officer_actions.OfficerDesk(cfg.api_url, cfg.service_token.get_secret_value())
            owned.append(desk)
        dedupe = deduper or build_deduper(cfg.redis_url, cfg.dedupe_ttl_seconds)
        if deduper is None:
            owned.append(dedupe)
        sink = status_sink
        if sink is None and cfg.database_url:
            ledger_sink = LedgerStatusSink(cfg.database_url)
            owned.append(ledger_sink)
            sink = ledger_sink
        inbox = Inbox(
            cfg.database_url,
            worker=worker_name(),
            lease_seconds=cfg.inbox_lease_seconds,
            pool_size=cfg.inbox_workers + 2,
        )
        owned.append(inbox)
        channels = build_channels(cfg, telegram_polling=telegram_polling)
        router = InboundRouter(
            channels=channels,
            conversation=convo,
            officers=desk,
            deduper=dedupe,
            inbox=inbox,
            status_sink=sink,
            # Officer calls and the conversation each bound themselves; this is the backstop.
            deadline_seconds=cfg.reply_deadline_seconds + cfg.rasa_queue_seconds + 2,
            workers=cfg.inbox_workers,
            poll_seconds=cfg.inbox_poll_seconds,
        )
        if channels.telegram is not None:
            channels.telegram.bind(router.accept_telegram)
        await channels.start()
        router.start()
        app.state.router = router
        app.state.channels = channels
        try:
            yield
        finally:
            await router.stop()
            await channels.aclose()
            for resource in owned:
                await resource.aclose()

    app = FastAPI(title="Kopa gateway", lifespan=lifespan, docs_url=None, redoc_url=None)

    def router_of(request: Request) -> InboundRouter:
        router: InboundRouter = request.app.state.router
        return router

    async def store(accepting: Coroutine[Any, Any, None]) -> None:
        """Store before acknowledging: a provider that gets no 2xx delivers again."""
        try:
            await accepting
        except ValueError as exc:
            raise HTTPException(400, "malformed update") from exc
        except Exception as exc:
            logger.error("inbox unavailable: %s", type(exc).__name__)
            raise HTTPException(503, "try again") from exc

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        return {"status": "ok", "channels": sorted(router_of(request).channels.gateways)}

    @app.post("/telegram/webhook")
    async def telegram_webhook(request: Request) -> Response:
        router = router_of(request)
        telegram = router.channels.telegram
        if telegram is None:
            raise HTTPException(404)
        header = request.headers.get("x-telegram-bot-api-secret-token")
        if header is None:
            raise HTTPException(401)
        expected = cfg.telegram.webhook_secret.get_secret_value()
        if not hmac.compare_digest(header.encode(), expected.encode()):
            raise HTTPException(403)
        require_json(request)
        data = _json_object(await read_body(request, cfg.max_body_bytes))
        if not isinstance(data.get("update_id"), int):
            raise HTTPException(400, "not a Telegram update")
        try:
            telegram.parse(data)
        except Exception as exc:  # any malformed update is the sender's error
            raise HTTPException(400, "malformed update") from exc
        await store(router.accept_telegram(data))
        return Response(status_code=200)

    @app.get("/whatsapp/webhook")
    async def whatsapp_verify(
        request: Request,
        mode: str | None = Query(None, alias="hub.mode"),
        token: str | None = Query(None, alias="hub.verify_token"),
        challenge: str | None = Query(None, alias="hub.challenge"),
    ) -> PlainTextResponse:
        whatsapp = router_of(request).channels.whatsapp
        if whatsapp is None:
            raise HTTPException(404)
        if mode != "subscribe" or challenge is None or not whatsapp.verify_token_ok(token):
            raise HTTPException(403)
        return PlainTextResponse(challenge)

    @app.post("/whatsapp/webhook")
    async def whatsapp_webhook(request: Request) -> Response:
        router = router_of(request)
        whatsapp = router.channels.whatsapp
        if whatsapp is None:
            raise HTTPException(404)
        header = request.headers.get("x-hub-signature-256")
        if not header:
            raise HTTPException(401)
        raw = await read_body(request, cfg.max_body_bytes)
        if not whatsapp.signature_ok(raw, header):
            raise HTTPException(403)
        require_json(request)
        payload = _json_object(raw)
        try:
            messages, statuses = split_webhook(payload)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HTTPException(400, "not a WhatsApp webhook") from exc
        items = [
            InboxItem(f"wa:{item['id']}", "whatsapp", f"wa:{item['from']}", item)
            for item in messages
        ]
        await store(router.accept(items))
        for status in statuses:
            router.spawn(router.record_status(status))
        return Response(status_code=200)

    return app
