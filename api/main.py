"""The loan API application: routers, error handlers, health."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from api.borrowers.router import router as identity_router
from api.cases.router import borrower_router as case_router
from api.cases.router import officer_router
from api.console.dashboard import router as console_dashboard_router
from api.console.promises import router as console_promises_router
from api.console.router import router as console_router
from api.console.templating import STATIC as CONSOLE_STATIC
from api.console.work import router as console_work_router
from api.core.errors import register_error_handlers
from api.core.security import require_service_token
from api.loans.router import router as loan_router
from api.payments.router import router as webhook_router
from api.promises.router import router as promise_router


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

    # Everything but /health and the docs needs the service token. The payment webhook also
    # checks its HMAC signature, so a leaked bot token alone cannot invent payments.
    protected = [Depends(require_service_token)]
    for router in (
        identity_router,
        loan_router,
        promise_router,
        case_router,
        officer_router,
        webhook_router,
    ):
        app.include_router(router, dependencies=protected)
    # The officers' console signs its users in itself (sessions, not the service token).
    app.include_router(console_router)
    app.include_router(console_work_router)
    app.include_router(console_dashboard_router)
    app.include_router(console_promises_router)
    app.mount("/console/static", StaticFiles(directory=CONSOLE_STATIC), name="console-static")
    return app


app = create_app()
