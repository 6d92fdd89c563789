"""The action server: rasa_sdk's app, answering only Rasa.

``python -m actions.server --port 5055`` serves the actions in this package like
``python -m rasa_sdk --actions actions`` does, with one difference: every request but
``GET /health`` must carry the shared secret ``KOPA_ACTION_SERVER_TOKEN`` in the
``X-Kopa-Action-Token`` header (compared in constant time), else it gets 401 and runs nothing.
Rasa sends the header from ``action_endpoint.headers`` in its endpoints file. rasa-sdk itself
authenticates nobody, and an action server that anyone can call runs any action for any
conversation id (``tg:<someone else>``) with the service token of the loan API.

Settings come from the environment only (prefix ``KOPA_``); the development placeholder is
refused when ``KOPA_ENV`` is ``production``.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
from functools import lru_cache
from typing import Any, Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from rasa_sdk import utils
from rasa_sdk.constants import DEFAULT_SERVER_PORT
from rasa_sdk.endpoint import create_app_for_serve
from rasa_sdk.executor import ActionExecutor
from sanic import HTTPResponse, Request, Sanic
from sanic.response import json as json_response
from sanic.worker.loader import AppLoader

TOKEN_HEADER = "X-Kopa-Action-Token"  # noqa: S105 - a header name
DEV_ACTION_SERVER_TOKEN = "dev-action-server-token"  # noqa: S105 - refused in production
OPEN_PATHS = frozenset({"/health"})

logger = logging.getLogger(__name__)


class ActionServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOPA_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    action_server_token: SecretStr = SecretStr(DEV_ACTION_SERVER_TOKEN)

    @model_validator(mode="after")
    def _refuse_placeholder(self) -> ActionServerSettings:
        token = self.action_server_token.get_secret_value()
        if self.env == "production" and token in ("", DEV_ACTION_SERVER_TOKEN):
            raise ValueError("KOPA_ACTION_SERVER_TOKEN must be set in production")
        if not token:
            raise ValueError("KOPA_ACTION_SERVER_TOKEN must not be empty")
        return self


@lru_cache
def get_settings() -> ActionServerSettings:
    return ActionServerSettings()


def token_matches(supplied: str | None, expected: str) -> bool:
    return hmac.compare_digest((supplied or "").encode(), expected.encode())


def create_action_app() -> Sanic[Any, Any]:
    """rasa_sdk's Sanic app for this package, behind the shared secret.

    Module level and without arguments so that Sanic's worker processes can build it again
    (each reads the secret from its environment; it never travels through a pickle).
    """
    expected = get_settings().action_server_token.get_secret_value()
    executor = ActionExecutor()
    executor.register_package("actions")
    # No CORS: only Rasa calls this server, never a browser.
    app: Sanic[Any, Any] = create_app_for_serve(executor, cors_origins=None)

    async def require_shared_secret(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS:
            return None
        if token_matches(request.headers.get(TOKEN_HEADER), expected):
            return None
        # No detail about what was wrong, and never the supplied value in the log.
        logger.warning("action server: refused a request without the shared secret")
        return json_response({"error": "unauthorized"}, status=401)

    app.register_middleware(require_shared_secret, "request")
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_SERVER_PORT)
    args = parser.parse_args(argv)
    get_settings()  # refuse to start with a missing or placeholder secret
    utils.configure_colored_logging(os.environ.get("LOG_LEVEL", "INFO"))
    utils.update_sanic_log_level()
    loader = AppLoader(factory=create_action_app)
    app = loader.load()
    host = os.environ.get("SANIC_HOST", "0.0.0.0")  # noqa: S104 - the stack sets 127.0.0.1
    app.prepare(host=host, port=args.port, workers=utils.number_of_sanic_workers())
    Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
