"""The console's routes and static files, in the API app or in an app of their own.

``kopa serve console`` runs the console alone (``create_console_app``): the same pages and
database as under the API, without the loan API's service-token routes, so it can listen on
its own port and be exposed to officers while the API stays internal.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.console.calls import router as calls_router
from api.console.dashboard import router as dashboard_router
from api.console.promises import router as promises_router
from api.console.router import redirect_to
from api.console.router import router as pages_router
from api.console.templating import STATIC
from api.console.work import router as work_router
from api.core.errors import register_error_handlers


def include_console(app: FastAPI) -> None:
    """Serve the console at /console; it signs its users in itself (sessions, not the token)."""
    app.include_router(pages_router)
    app.include_router(work_router)
    app.include_router(dashboard_router)
    app.include_router(promises_router)
    app.include_router(calls_router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")


def create_console_app() -> FastAPI:
    app = FastAPI(title="Kopa officers' console", docs_url=None, redoc_url=None, openapi_url=None)
    register_error_handlers(app)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return redirect_to("/console/queue")

    include_console(app)
    return app
