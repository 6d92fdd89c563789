"""Domain errors and their one mapping to HTTP.

Every domain raises subclasses of :class:`DomainError` with a stable machine ``code``; the API
answers ``{"code": ..., "detail": ...}`` and never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """A rule of the domain said no; ``code`` is stable and safe to show to clients."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str | None = None, **context: Any) -> None:
        self.detail = detail or self.__doc__ or self.code
        self.context = context
        super().__init__(self.detail)


class NotFound(DomainError):
    """The requested record does not exist or is not visible to this identity."""

    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The request conflicts with the current state."""

    status_code = 409
    code = "conflict"


class Unauthorized(DomainError):
    """Missing or wrong credentials."""

    status_code = 401
    code = "unauthorized"


class Forbidden(DomainError):
    """This identity may not do that."""

    status_code = 403
    code = "forbidden"


class Invalid(DomainError):
    """The request breaks a business rule."""

    status_code = 422
    code = "invalid"


def error_body(code: str, detail: Any, **extra: Any) -> dict[str, Any]:
    return {"code": code, "detail": detail, **extra}


def register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.detail, **exc.context), status_code=exc.status_code
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg"), "type": err.get("type")}
            for err in exc.errors()
        ]
        return JSONResponse(error_body("validation_error", errors), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(error_body(code, exc.detail), status_code=exc.status_code)

    @app.exception_handler(DBAPIError)
    async def _database(_request: Request, exc: DBAPIError) -> JSONResponse:
        # A connection lost mid-request (server restart, terminated backend, network): the
        # transaction was rolled back with it, so nothing is half-written and the caller may
        # retry with the same Idempotency-Key. The pool already dropped the dead connection.
        if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            logger.warning("database unavailable: %s", type(exc.orig).__name__)
            return JSONResponse(
                error_body("database_unavailable", "The database is unavailable; retry shortly"),
                status_code=503,
                headers={"Retry-After": "1"},
            )
        logger.error("database error: %s", type(exc.orig).__name__)
        return JSONResponse(error_body("internal_error", "Internal error"), status_code=500)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # The type only: messages of unexpected errors may carry personal data.
        logger.error("unhandled error: %s", type(exc).__name__)
        return JSONResponse(error_body("internal_error", "Internal error"), status_code=500)
