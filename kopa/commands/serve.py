"""``kopa serve``: run a service in the foreground."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run a service.", no_args_is_help=True)


@app.command()
def api(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the loan API."""
    import uvicorn

    uvicorn.run("api.main:app", host=host, port=port, log_level="info", access_log=False)
