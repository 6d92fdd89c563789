"""Action runs reach the loan API over kept-alive connections, over real HTTP.

One new TCP connection per API call was what, under a burst, made connects miss their timeout
and borrowers hear "try again shortly" (``actions/api_connections.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request

from actions.loan_api import LoanApiClient
from bot.fakes.runner import ServerThread


@pytest.fixture
def identity_api() -> Iterator[tuple[str, list[int]]]:
    """A stand-in loan API that notes the client port (the connection) of every request."""
    ports: list[int] = []
    app = FastAPI()

    @app.get("/v1/identities/{channel}/{user}")
    async def identity(channel: str, user: str, request: Request) -> dict[str, str]:
        assert request.client is not None
        ports.append(request.client.port)
        assert request.headers["authorization"] == "Bearer s3cret"
        return {"status": "unverified"}

    with ServerThread(app) as server:
        yield server.url, ports


async def test_turns_one_after_another_share_one_connection(
    identity_api: tuple[str, list[int]],
) -> None:
    url, ports = identity_api
    for turn in range(10):
        async with LoanApiClient(url, "s3cret") as api:
            assert (await api.identity("telegram", f"user-{turn}")).status == "unverified"
    assert len(ports) == 10
    assert len(set(ports)) == 1


async def test_a_closed_run_leaves_the_pool_usable_for_the_next(
    identity_api: tuple[str, list[int]],
) -> None:
    url, ports = identity_api
    async with LoanApiClient(url, "s3cret") as api:
        await api.identity("telegram", "a")
    async with LoanApiClient(url, "s3cret") as api:
        await api.identity("whatsapp", "b")
    assert len(ports) == 2
