"""Reliability matrix, conduct and load rows: L-1, L-4, F-3, F-12, F-13, P-5, K-1, K-2, K-4,
K-5, K-6 (``shared/guide/conduct-and-reliability.md`` section 5). L-3 (L-1 during L-2) needs the
gateway rig: it is in ``tests/reliability/test_gateway_with_campaign.py``.

Each test drives the notifier as production runs it: the planner and the deliverer (or real
``kopa notify worker`` processes) on PostgreSQL, the shared rate limiter on Redis, the real
Telegram and WhatsApp gateways against the fake providers (``bot/fakes``), which also measure
what reached them. Sizes smaller than the row's are named in each docstring, with the benchmark
that runs the full size.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from tests.reliability.conduct_and_load.pipeline import GatewayLoop


@pytest.fixture
def db_url(postgres_url: str) -> str:
    """Production runs the notifier on PostgreSQL: ``bound`` joins a PostgreSQL transaction."""
    return postgres_url


@pytest.fixture
def gateway_loop(fake_tg: tuple[FakeTelegram, ServerThread]) -> Iterator[GatewayLoop]:
    loop = GatewayLoop(fake_tg[1].url, read_timeout=0.3)
    yield loop
    loop.close()
