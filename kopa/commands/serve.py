"""``kopa serve``: run a service in the foreground."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run a service.", no_args_is_help=True)


@app.command()
def api(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the loan API."""
    import uvicorn

    uvicorn.run("api.main:app", host=host, port=port, log_level="info", access_log=False)


@app.command()
def console(
    host: str | None = typer.Option(None, help="address to bind (else KOPA_CONSOLE__HOST)"),
    port: int | None = typer.Option(None, help="port to bind (else KOPA_CONSOLE__PORT, 8090)"),
) -> None:
    """Serve the officers' web console on its own, at /console (no loan API)."""
    import uvicorn

    from api.core.config import get_settings

    settings = get_settings().console
    uvicorn.run(
        "api.console.app:create_console_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
        access_log=False,
    )
