"""Loan API settings.

Precedence: environment variables (prefix ``KOPA_``, nested groups with ``__``) over a ``.env``
file over the defaults below. Secrets are ``SecretStr`` and only ever come from the environment;
the development defaults are refused when ``KOPA_ENV`` is ``production``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SERVICE_TOKEN = "dev-service-token"  # noqa: S105 - a placeholder refused in production
DEV_WEBHOOK_SECRET = "dev-payment-webhook-secret"  # noqa: S105
DEV_HASH_PEPPER = "dev-pepper"


class VerificationPolicy(BaseModel):
    # The knowledge factors the institution accepts; the bot offers all of them and the
    # borrower answers whichever they know.
    factors: list[Literal["dob", "national_id"]] = ["dob", "national_id"]
    max_failures: int = 5
    # The first lockout lasts this long, each further one in the same 24 h twice the one before.
    lockout_minutes: int = 30
    # This many failures within 24 h hold the chat until an officer unlocks it (a case is raised).
    hold_after_failures: int = 15
    idle_minutes: int = 15


class PromisePolicy(BaseModel):
    max_days_ahead: int = 30
    grace_days: int = 2


class CasePolicy(BaseModel):
    hardship_sla_hours: int = 48
    officer_request_sla_hours: int = 24
    complaint_sla_hours: int = 72
    payment_claim_sla_hours: int = 24
    # What a borrower is told when a payment they claim has not arrived yet.
    payments_visible_within_hours: int = 24


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KOPA_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///var/kopa.db"
    service_token: SecretStr = SecretStr(DEV_SERVICE_TOKEN)
    payment_webhook_secret: SecretStr = SecretStr(DEV_WEBHOOK_SECRET)
    hash_pepper: SecretStr = SecretStr(DEV_HASH_PEPPER)
    verification: VerificationPolicy = VerificationPolicy()
    promises: PromisePolicy = PromisePolicy()
    cases: CasePolicy = CasePolicy()

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.env == "production":
            placeholders = {
                "KOPA_SERVICE_TOKEN": (self.service_token, DEV_SERVICE_TOKEN),
                "KOPA_PAYMENT_WEBHOOK_SECRET": (self.payment_webhook_secret, DEV_WEBHOOK_SECRET),
                "KOPA_HASH_PEPPER": (self.hash_pepper, DEV_HASH_PEPPER),
            }
            for name, (value, placeholder) in placeholders.items():
                if value.get_secret_value() == placeholder:
                    raise ValueError(f"{name} must be set in production")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
