"""``kopa officers add``: a member of staff who can sign in, the password never an argument."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from api.branches.models import Branch, Officer, StaffRole
from api.branches.service import branch_scope
from api.core import db
from api.core.migrate import upgrade
from kopa.cli import app
from kopa.commands.officers import PASSWORD_ENV
from tests.api.console_pages import cheap_hashing
from tests.api.factories import make_branch
from tests.cli.app_caches import clear_app_caches

pytestmark = pytest.mark.usefixtures(cheap_hashing.__name__)
SECRET = "a long enough secret"


@pytest.fixture
def branches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    url = f"sqlite:///{tmp_path / 'officers.db'}"
    upgrade(url)
    engine = db.build_engine(url)
    with Session(engine) as session:
        codes = [make_branch(session).code for _ in range(2)]
        session.commit()
    engine.dispose()
    monkeypatch.setenv("KOPA_DATABASE_URL", url)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    clear_app_caches()
    yield codes
    clear_app_caches()


def _kopa(*args: str, env: dict[str, str] | None = None, typed: str | None = None) -> Result:
    return CliRunner().invoke(app, ["officers", "add", *args], env=env, input=typed)


def _staff(email: str) -> Officer:
    with db.session_scope() as session:
        return session.scalars(select(Officer).where(Officer.email == email)).one()


def test_the_password_comes_from_the_environment_and_is_stored_hashed(
    branches: list[str],
) -> None:
    result = _kopa(
        "--email",
        " Grace@MFI.example ",
        "--branch",
        branches[0],
        "--name",
        "Grace Otieno",
        env={PASSWORD_ENV: SECRET},
    )

    assert result.exit_code == 0, result.output
    assert "officer grace@mfi.example added" in result.output
    assert SECRET not in result.output
    officer = _staff("grace@mfi.example")
    assert (officer.role, officer.name, officer.locale) == (StaffRole.officer, "Grace Otieno", "en")
    assert officer.password_hash is not None and SECRET not in officer.password_hash
    assert PasswordHasher().verify(officer.password_hash, SECRET)


def test_without_the_variable_the_password_is_typed_twice_unseen(branches: list[str]) -> None:
    result = _kopa(
        "--email",
        "amani@mfi.example",
        "--branch",
        branches[0],
        "--locale",
        "sw",
        typed=f"{SECRET}\n{SECRET}\n",
    )

    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert _staff("amani@mfi.example").locale == "sw"


def test_a_manager_oversees_every_branch_named(branches: list[str]) -> None:
    result = _kopa(
        "--email",
        "boss@mfi.example",
        "--role",
        "manager",
        "--branch",
        branches[0],
        "--branch",
        branches[1],
        env={PASSWORD_ENV: SECRET},
    )

    assert result.exit_code == 0, result.output
    manager = _staff("boss@mfi.example")
    with db.session_scope() as session:
        named = set(session.scalars(select(Branch.id).where(Branch.code.in_(branches))))
        assert branch_scope(session, manager) == frozenset(named)
        assert manager.branch_id == session.scalar(
            select(Branch.id).where(Branch.code == branches[0])
        )


@pytest.mark.parametrize(
    ("args", "password", "error"),
    [
        (["--branch", "NOPE"], SECRET, "No branch has the code 'NOPE'"),
        (["--branch", "{0}"], "short", "at least 12 characters"),
        (["--branch", "{0}", "--branch", "{1}"], SECRET, "Only a manager oversees"),
        (["--branch", "{0}", "--role", "chief"], SECRET, "officer, manager or admin"),
    ],
)
def test_mistakes_are_refused_and_add_nobody(
    branches: list[str], args: list[str], password: str, error: str
) -> None:
    filled = [a.format(*branches) for a in args]
    result = _kopa("--email", "x@mfi.example", *filled, env={PASSWORD_ENV: password})

    assert result.exit_code == 2
    assert error in " ".join(result.output.split())
    with db.session_scope() as session:
        assert session.scalar(select(Officer).where(Officer.email == "x@mfi.example")) is None


def test_an_email_signs_in_one_member_of_staff_only(branches: list[str]) -> None:
    env = {PASSWORD_ENV: SECRET}
    assert _kopa("--email", "dup@mfi.example", "--branch", branches[0], env=env).exit_code == 0

    again = _kopa("--email", "DUP@mfi.example", "--branch", branches[1], env=env)

    assert again.exit_code == 2
    assert "already signs in with this email" in again.output
