"""``kopa officers``: staff accounts of the web console.

The password never travels as an argument (arguments end up in shell history, ``ps`` and
logs): it is read from ``KOPA_OFFICER_PASSWORD`` when set, else typed twice at a hidden prompt.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

app = typer.Typer(help="Staff accounts of the officers' web console.", no_args_is_help=True)

PASSWORD_ENV = "KOPA_OFFICER_PASSWORD"  # noqa: S105 - the variable's name, not a password


def _password() -> str:
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command()
def add(
    branch: Annotated[
        list[str],
        typer.Option("--branch", help="a branch code; repeat for a manager of several branches"),
    ],
    email: str = typer.Option(..., "--email", help="the work email they sign in with"),
    role: str = typer.Option(
        "officer", "--role", help="officer (one branch), manager (their branches) or admin (all)"
    ),
    name: str | None = typer.Option(None, "--name", help="shown to borrowers (default: email)"),
    locale: str = typer.Option("en", "--locale", help="the console's language: en, fr, es, sw"),
) -> None:
    """Add a member of staff who can sign in to the console at /console."""
    from api.branches.models import StaffRole
    from api.console import auth
    from api.core.config import get_settings
    from api.core.db import session_scope
    from api.core.errors import DomainError
    from i18n import SUPPORTED_LOCALES

    if role not in StaffRole.__members__:
        raise typer.BadParameter("officer, manager or admin", param_hint="--role")
    if locale not in SUPPORTED_LOCALES:
        raise typer.BadParameter(", ".join(SUPPORTED_LOCALES), param_hint="--locale")
    staff = auth.NewStaff(
        email=email,
        name=name or email.split("@")[0],
        role=StaffRole(role),
        branch_codes=tuple(branch),
        locale=locale,
    )
    try:
        with session_scope() as session:
            officer = auth.add_officer(
                session=session,
                staff=staff,
                password=_password(),
                policy=get_settings().console,
            )
            officer_id = officer.id
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"{role} {auth.normalize_email(email)} added (officer id {officer_id})")
