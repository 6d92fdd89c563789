"""The reliability matrix of ``shared/guide/conduct-and-reliability.md`` section 5 as tests.

One test function per matrix id, named ``test_<id>_<what>`` (``test_L1_...``, ``test_F4_...``,
``test_B12_...``, ``test_P7_...``, ``test_K6_...``), each asserting its row's pass criterion, on
PostgreSQL and Redis where production runs on them. Where the row's full size would not fit CI's
budget the test says which smaller size it uses and which benchmark runs the full one.

The notifier's rows drive it with the notifier tests' own fixtures (``tests/notifier``: bound
sessions, fake providers, real gateways, a database of its own and the shared Redis), made
available to every module here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notifier.conftest import (  # noqa: F401 - fixtures, used by name
    bound,
    fake_tg,
    fake_wa,
    fresh_pg,
    redis_url,
    telegram,
    whatsapp,
)
from tests.reliability.gateway_rig import Rig, start_rig


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """The production topology (two replicas, two gateways), shared by the modules that need it:
    starting it takes minutes on two cores."""
    yield from start_rig(tmp_path_factory)
