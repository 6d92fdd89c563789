"""Playwright's API for the browser test modules, which skip without it (fail with
``KOPA_REQUIRE_SERVICES=1``): they import it from here rather than from Playwright."""

from __future__ import annotations

import pytest

from tests.services import REQUIRE_SERVICES

try:
    from playwright.sync_api import Page, expect
except ImportError:
    if REQUIRE_SERVICES:
        raise
    pytest.skip(
        "Playwright is not installed: `make setup` installs it from requirements.lock",
        allow_module_level=True,
    )

__all__ = ["Page", "expect"]
