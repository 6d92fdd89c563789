"""The loan API application: routers, error handlers, health."""

from __future__ import annotations

from fastapi import FastAPI

from api.core.errors import register_error_handlers


def create_app() -> FastAPI:
    app = FastAPI(
        title="Kopa loan API",
        version="0.1.0",
        description="System of record for Kopa's borrower bot, notifier and officers.",
    )
    register_error_handlers(app)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    # Domain routers are included here, one line each (see api/<domain>/router.py).
    return app


app = create_app()
