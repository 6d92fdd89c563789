"""Service-token authentication for the bot-facing API and HMAC checks for webhooks."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Header

from api.core.config import Settings, get_settings
from api.core.errors import Unauthorized


def require_service_token(
    settings: Annotated[Settings, Depends(get_settings)],
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    """Accept only ``Authorization: Bearer <KOPA_SERVICE_TOKEN>``, compared in constant time."""
    scheme, _, token = (authorization or "").partition(" ")
    expected = settings.service_token.get_secret_value()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("A valid service token is required")


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payment_signature(secret: str, body: bytes, *, timestamp: int) -> str:
    """``sha256=<hex>`` over ``<unix seconds>.`` and the raw body: the time is signed too."""
    return "sha256=" + hmac_sha256_hex(secret, f"{timestamp}.".encode() + body)


def payment_signature_headers(secret: str, body: bytes, *, timestamp: int) -> dict[str, str]:
    """The headers a sender of the payment webhook signs a body with."""
    return {
        "X-Kopa-Timestamp": str(timestamp),
        "X-Kopa-Signature": payment_signature(secret, body, timestamp=timestamp),
    }


def signed_timestamp(
    secret: str, body: bytes, timestamp_header: str | None, signature_header: str | None
) -> int | None:
    """The signed send time of a payment webhook, or None when the signature does not match."""
    if not timestamp_header or not timestamp_header.isdigit() or not signature_header:
        return None
    timestamp = int(timestamp_header)
    expected = payment_signature(secret, body, timestamp=timestamp)
    if not hmac.compare_digest(signature_header.encode(), expected.encode()):
        return None
    return timestamp


def hash_secret_factor(pepper: str, value: str) -> str:
    """Peppered hash of a knowledge factor (date of birth, national-ID digits)."""
    normalized = "".join(value.split()).lower()
    return hmac.new(pepper.encode(), normalized.encode(), hashlib.sha256).hexdigest()
