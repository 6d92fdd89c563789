"""The reminder holdout's arms: a stable hash of the borrower id, about the configured share."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.borrowers.holdout import in_holdout, position
from api.core.config import HoldoutPolicy, Settings

IDS = range(1, 10_001)


def test_a_borrowers_place_is_the_documented_hash_forever() -> None:
    # SHA-256("kopa-holdout-1:42") starts f3b17fd436e6d777: 0xf3b17fd436e6d777 / 2**64.
    assert position(42, "kopa-holdout-1") == 0xF3B17FD436E6D777 / 2**64
    assert position(42, "kopa-holdout-1") == position(42, "kopa-holdout-1")
    # Another salt is another experiment: the borrower lands elsewhere.
    assert position(42, "kopa-holdout-2") != position(42, "kopa-holdout-1")


def test_about_the_configured_share_of_10000_borrowers_is_held_out() -> None:
    five = {i for i in IDS if in_holdout(i, HoldoutPolicy(share=0.05))}
    ten = {i for i in IDS if in_holdout(i, HoldoutPolicy(share=0.10))}
    # Binomial(10000, 0.05): mean 500, sd 21.8; the hash is fixed, so this is 477 every run.
    assert 430 <= len(five) <= 570
    assert 900 <= len(ten) <= 1100  # mean 1000, sd 30
    # Raising the share only moves reminded borrowers into the holdout.
    assert five < ten


def test_a_zero_share_holds_nobody_out() -> None:
    assert not any(in_holdout(i, HoldoutPolicy(share=0.0)) for i in IDS)


def test_the_share_is_read_from_the_environment_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KOPA_HOLDOUT__SHARE", "0.05")
    monkeypatch.setenv("KOPA_HOLDOUT__SALT", "pilot-2027")
    holdout = Settings().holdout
    assert (holdout.share, holdout.salt) == (0.05, "pilot-2027")
    with pytest.raises(ValidationError):
        HoldoutPolicy(share=0.9)  # a holdout bigger than half is no holdout
