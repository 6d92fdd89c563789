"""The ``kopa`` command: one entry point for operators, developers and CI."""

from __future__ import annotations

import typer

from kopa.commands import bot as bot_commands
from kopa.commands import chat as chat_commands
from kopa.commands import db as db_commands
from kopa.commands import demo as demo_commands
from kopa.commands import imports as import_commands
from kopa.commands import kpis as kpi_commands
from kopa.commands import notify as notify_commands
from kopa.commands import officers as officer_commands
from kopa.commands import retention as retention_commands
from kopa.commands import risk as risk_commands
from kopa.commands import seed as seed_commands
from kopa.commands import serve as serve_commands
from kopa.commands import stack as stack_commands

app = typer.Typer(
    help="Kopa: borrower chat, reminders and officer escalations.", no_args_is_help=True
)
app.add_typer(db_commands.app, name="db")
app.add_typer(notify_commands.app, name="notify")
app.add_typer(officer_commands.app, name="officers")
app.add_typer(retention_commands.app, name="retention")
app.add_typer(risk_commands.app, name="risk")
app.add_typer(serve_commands.app, name="serve")
app.add_typer(seed_commands.app, name="seed")
app.add_typer(stack_commands.app, name="stack")
app.command("import")(import_commands.import_command)
app.command("demo")(demo_commands.demo)
app.add_typer(bot_commands.fake_app, name="fake")
serve_commands.app.command("bot")(bot_commands.serve_bot)
app.command("cases")(bot_commands.cases)
app.command("chat")(chat_commands.chat)
app.command("kpis")(kpi_commands.kpis)


@app.command()
def train(
    force: bool = typer.Option(False, help="retrain even when the model is up to date"),
) -> None:
    """Train the Rasa model when its inputs changed."""
    from kopa.train import ensure_model

    ensure_model(force=force)


if __name__ == "__main__":
    app()
