"""Staff accounts and a signed-in client for the console's tests."""

from __future__ import annotations

import re
from collections.abc import Sequence

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.branches.models import Branch, Officer, StaffRole
from api.console import auth
from api.core.config import get_settings

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def make_staff(
    session: Session,
    branches: Sequence[Branch],
    *,
    role: StaffRole = StaffRole.officer,
    email: str | None = None,
    locale: str = "en",
    name: str = "Grace Otieno",
) -> Officer:
    """A member of staff who signs in with :data:`PASSWORD`."""
    staff = auth.NewStaff(
        email=email or f"{role.value}.{branches[0].code.lower()}@mfi.example",
        name=name,
        role=role,
        branch_codes=tuple(b.code for b in branches),
        locale=locale,
    )
    return auth.add_officer(
        session=session, staff=staff, password=PASSWORD, policy=get_settings().console
    )


def csrf_token(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def sign_in(
    web: TestClient, email: str | None, password: str = PASSWORD, **headers: str
) -> httpx.Response:
    form = web.get("/console/login", headers=headers)
    return web.post(
        "/console/login",
        data={"email": email or "", "password": password, "csrf_token": csrf_token(form)},
        headers=headers,
        follow_redirects=False,
    )


@pytest.fixture
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with the smallest costs: the tests check the flow, not the hash's strength (a
    default-cost hash takes up to a second on a busy test machine)."""
    monkeypatch.setattr(auth, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
