"""Idempotency keys, scoped to the caller so two chats can never collide on the same key."""

from __future__ import annotations

import hashlib


def scoped_key(scope: str, key: str | None) -> str | None:
    """A fixed-length digest of ``scope`` and the client's ``Idempotency-Key`` (None stays None)."""
    if not key:
        return None
    return hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()
