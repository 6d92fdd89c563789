"""Fixtures for unit tests of the actions: the fake loan API is in ``helpers_actions``."""

from tests.actions.helpers_actions import fake_api

__all__ = ["fake_api"]
