"""python-telegram-bot's networking on aiohttp: a ``telegram.request.BaseRequest`` subclass.

PTB ships an httpx backend and documents ``BaseRequest`` as the seam for others. We measured
httpx (0.28, asyncio) at 1.8 to 3.5 ms of client CPU per ``sendMessage`` against the local fake
Bot API, and aiohttp at about 0.2 ms; at the notifier's 1000 messages/s that difference is more
than a whole core (bench/README.md). Everything above the socket (parameters, JSON, errors,
``RetryAfter``) is still PTB's own.

Errors keep their aiohttp cause, so :func:`bot.channels.telegram.classify` can tell a request
that never left (connection refused, connect or pool timeout: safe to retry) from one that may
have reached Telegram (read timeout, dropped connection: outcome unknown, never resent).
"""

from __future__ import annotations

from typing import cast

import aiohttp
import orjson
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import JSONDict, ODVInput
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

# A connection-level failure before any byte of the request left.
NOT_SENT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
)


_JSON = {"Content-Type": "application/json"}


class AiohttpRequest(BaseRequest):
    """A pooled aiohttp session with PTB's four timeouts (write is folded into read)."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 8,
        connect_timeout: float = 5.0,
        read_timeout: float = 5.0,
        pool_timeout: float = 1.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT}
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    @staticmethod
    def _pick(value: ODVInput[float], default: float) -> float | None:
        return default if isinstance(value, DefaultValue) else value

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        """PTB's parsing with orjson (a notifier worker parses a thousand answers a second;
        ``json`` spent a tenth of its event loop on them). Invalid UTF-8 is replaced, as PTB
        does; unlike PTB, an unreadable answer is not logged, for it may carry a borrower's
        message."""
        try:
            return cast(JSONDict, orjson.loads(payload))
        except orjson.JSONDecodeError:
            pass
        try:
            return cast(JSONDict, orjson.loads(payload.decode("utf-8", "replace")))
        except orjson.JSONDecodeError as exc:
            raise TelegramError("Invalid server response") from exc

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            # A session belongs to a running loop, so it may only be made here or in initialize.
            await self.initialize()
        assert self._session is not None
        read = self._pick(read_timeout, self._read_timeout)
        write = self._pick(write_timeout, self._read_timeout)
        connect = self._pick(connect_timeout, self._connect_timeout)
        pool = self._pick(pool_timeout, self._pool_timeout)
        sock_read = None if read is None and write is None else max(read or 0.0, write or 0.0)
        timeout = aiohttp.ClientTimeout(
            total=None,
            # aiohttp's connect timeout covers the wait for a free pooled connection too.
            connect=None if connect is None else connect + (pool or 0.0),
            sock_connect=connect,
            sock_read=sock_read,
        )
        body: aiohttp.FormData | bytes | None = None
        headers: dict[str, str] | None = None
        if request_data is not None:
            if request_data.contains_files:
                body = aiohttp.FormData()
                for name, value in request_data.json_parameters.items():
                    body.add_field(name, value)
                for name, part in request_data.multipart_data.items():
                    filename, content, *rest = part
                    body.add_field(
                        name, content, filename=filename, content_type=rest[0] if rest else None
                    )
            else:
                # The Bot API takes JSON bodies for everything but uploads; encoding one costs a
                # fraction of a form's per-field quoting.
                body = orjson.dumps(request_data.parameters)
                headers = _JSON
        target = self._urls.get(url)
        if target is None:
            # Parsing and quoting the URL costs more than the rest of the request's set-up;
            # the bot calls a handful of methods.
            target = self._urls[url] = URL(url)
        try:
            async with self._session.request(
                method, target, data=body, headers=headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err
