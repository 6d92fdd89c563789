"""What every long-lived HTTP client of the gateway shares.

The servers it calls (Rasa's Sanic, the loan API's uvicorn) close a connection idle for 5 s, and
httpx keeps one for 5 s too: a request could go out on a connection the server is closing that
instant and fail (a ReadError that would take a healthy Rasa replica out of rotation, or a
"try again" for the borrower). Clients let go of idle connections well before servers do.
"""

from __future__ import annotations

import httpx

POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=2.0)
