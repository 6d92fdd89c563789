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


def signature_matches(secret: str, body: bytes, header_value: str | None) -> bool:
    """Check ``sha256=<hex>`` over the raw body in constant time."""
    if not header_value or not header_value.startswith("sha256="):
        return False
    return hmac.compare_digest(header_value.removeprefix("sha256="), hmac_sha256_hex(secret, body))


def hash_secret_factor(pepper: str, value: str) -> str:
    """Peppered hash of a knowledge factor (date of birth, national-ID digits)."""
    normalized = "".join(value.split()).lower()
    return hmac.new(pepper.encode(), normalized.encode(), hashlib.sha256).hexdigest()
