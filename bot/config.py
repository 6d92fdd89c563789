"""Settings of the channel gateway (``kopa serve bot``) and of everything that sends through it.

Precedence: environment variables (prefix ``KOPA_``, nested groups with ``__``, e.g.
``KOPA_TELEGRAM__TOKEN``) over a ``.env`` file over the defaults below. Tokens and secrets are
``SecretStr`` and only ever come from the environment; the development placeholders below let the
demo run against the local fake servers and are refused when ``KOPA_ENV`` is ``production``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.rasa_client import TURN_SECONDS
from bot.rasa_pool import CONCURRENCY, QUEUE_SECONDS

DEV_TELEGRAM_TOKEN = "123456:dev-telegram-token"  # noqa: S105 - placeholder refused in production
DEV_TELEGRAM_WEBHOOK_SECRET = "dev-telegram-webhook-secret"  # noqa: S105
DEV_WHATSAPP_TOKEN = "dev-whatsapp-token"  # noqa: S105
DEV_WHATSAPP_APP_SECRET = "dev-whatsapp-app-secret"  # noqa: S105
DEV_WHATSAPP_VERIFY_TOKEN = "dev-whatsapp-verify-token"  # noqa: S105
DEV_SERVICE_TOKEN = "dev-service-token"  # noqa: S105 - same placeholder as the loan API's


class TelegramSettings(BaseModel):
    enabled: bool = True
    token: SecretStr = SecretStr(DEV_TELEGRAM_TOKEN)
    # Sent by Telegram in X-Telegram-Bot-Api-Secret-Token: 1-256 of A-Z a-z 0-9 _ -.
    webhook_secret: SecretStr = SecretStr(DEV_TELEGRAM_WEBHOOK_SECRET)
    # PTB appends the token; point this at `kopa fake telegram` in development.
    api_base_url: str = "https://api.telegram.org/bot"
    # When set, the gateway registers <webhook_url> with setWebhook at start-up.
    webhook_url: str | None = None
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    # Updates handled at once; PTB's default of one would serialise every chat behind the slowest.
    concurrent_updates: int = 64

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret_charset(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
        if not 1 <= len(secret) <= 256 or not set(secret) <= allowed:
            raise ValueError("the Telegram webhook secret must be 1-256 of A-Z a-z 0-9 _ -")
        return value


class WhatsAppSettings(BaseModel):
    enabled: bool = True
    token: SecretStr = SecretStr(DEV_WHATSAPP_TOKEN)
    app_secret: SecretStr = SecretStr(DEV_WHATSAPP_APP_SECRET)
    verify_token: SecretStr = SecretStr(DEV_WHATSAPP_VERIFY_TOKEN)
    phone_number_id: str = "100000000000001"
    graph_base_url: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    connect_timeout: float = 3.0
    read_timeout: float = 10.0


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KOPA_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Literal["development", "test", "production"] = "development"
    telegram: TelegramSettings = TelegramSettings()
    whatsapp: WhatsAppSettings = WhatsAppSettings()
    # One Rasa server, or several replicas separated by commas (``bot.rasa_pool``).
    rasa_url: str = "http://127.0.0.1:5005"
    # "dns": the replicas are every address KOPA_RASA_URL's host resolves to, looked up again
    # every 10 s (Compose ``deploy.replicas``, a Kubernetes headless Service).
    rasa_discovery: Literal["static", "dns"] = "static"
    # Turns this process has in flight at one replica; more wait, up to ``rasa_queue_seconds``.
    rasa_concurrency: int = CONCURRENCY
    rasa_queue_seconds: float = QUEUE_SECONDS
    api_url: str = "http://127.0.0.1:8000"
    service_token: SecretStr = SecretStr(DEV_SERVICE_TOKEN)
    # Where ``kopa serve bot`` listens (KOPA_GATEWAY_HOST, KOPA_GATEWAY_PORT).
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    # Shared by every gateway replica for inbound de-duplication; in-memory when unset.
    redis_url: str | None = None
    # The app database (the loan API's): the durable inbox and the contact ledger.
    database_url: str = "sqlite:///var/kopa.db"
    # How long a turn Rasa has taken is waited for before the borrower hears "try again
    # shortly" (a wait for a free slot of a busy replica, ``rasa_queue_seconds``, comes on top).
    # Generous on purpose (``bot.rasa_client.turn_timeout`` says why): under a burst turns take
    # tens of seconds; this bound only frees the gateway from a Rasa that hangs. ``bench/chat``
    # measures real reply times.
    reply_deadline_seconds: float = TURN_SECONDS
    # Turns answered at once by this process (different chats; one chat is answered in order):
    # as many as one replica takes from it, fewer left a lone replica idle (``bot/rasa_pool``).
    inbox_workers: int = CONCURRENCY
    # A turn whose process died is replayed once its lease runs out (renewed while it runs).
    inbox_lease_seconds: float = 30.0
    # How often an idle process looks for rows other processes stored or leases that ran out.
    inbox_poll_seconds: float = 0.5
    max_body_bytes: int = 1_000_000
    # Telegram resends an update it got no 2xx for; WhatsApp retries for days: keep ids 48 h.
    dedupe_ttl_seconds: int = 48 * 3600

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> BotSettings:
        if self.env != "production":
            return self
        placeholders = {
            "KOPA_SERVICE_TOKEN": (self.service_token, DEV_SERVICE_TOKEN, True),
            "KOPA_TELEGRAM__TOKEN": (
                self.telegram.token,
                DEV_TELEGRAM_TOKEN,
                self.telegram.enabled,
            ),
            "KOPA_TELEGRAM__WEBHOOK_SECRET": (
                self.telegram.webhook_secret,
                DEV_TELEGRAM_WEBHOOK_SECRET,
                self.telegram.enabled,
            ),
            "KOPA_WHATSAPP__TOKEN": (
                self.whatsapp.token,
                DEV_WHATSAPP_TOKEN,
                self.whatsapp.enabled,
            ),
            "KOPA_WHATSAPP__APP_SECRET": (
                self.whatsapp.app_secret,
                DEV_WHATSAPP_APP_SECRET,
                self.whatsapp.enabled,
            ),
            "KOPA_WHATSAPP__VERIFY_TOKEN": (
                self.whatsapp.verify_token,
                DEV_WHATSAPP_VERIFY_TOKEN,
                self.whatsapp.enabled,
            ),
        }
        for name, (value, placeholder, needed) in placeholders.items():
            if needed and value.get_secret_value() == placeholder:
                raise ValueError(f"{name} must be set in production")
        return self


@lru_cache
def get_bot_settings() -> BotSettings:
    return BotSettings()
