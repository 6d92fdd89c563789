"""Loan API settings.

Precedence: environment variables (prefix ``KOPA_``, nested groups with ``__``) over a ``.env``
file over the defaults below. Secrets are ``SecretStr`` and only ever come from the environment;
the development defaults are refused when ``KOPA_ENV`` is ``production``.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
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
    # Officers must not be flooded: over 24 hours a borrower opens at most this many cases (of
    # any kind but hardship, which is never capped), payment claims and officer requests. Later
    # requests are added to their latest case as notes, alert nobody, and the borrower hears it
    # is already with the officer.
    max_cases_per_day: int = 3
    max_payment_claims_per_day: int = 2
    max_officer_requests_per_day: int = 2
    # Notes keep the borrower's words; past this many a day only the request is counted.
    max_notes_per_day: int = 20
    # A call that reached nobody (no answer, unreachable) is due to be made again this much later.
    call_back_hours: int = 24


class ConsolePolicy(BaseModel):
    """Sign-in and sessions of the officers' web console, and where ``kopa serve console``
    listens (``KOPA_CONSOLE__HOST``, ``KOPA_CONSOLE__PORT``)."""

    host: str = "127.0.0.1"
    port: int = 8090

    # A session ends after this long without a request, and in any case this long after sign-in.
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    # This many wrong passwords in a row lock the account for ``lockout_minutes``.
    max_failures: int = 5
    lockout_minutes: int = 15
    # One address may fail this many sign-ins (any accounts) per window before it is refused
    # without checking: slows guessing across many accounts, which the lockout does not.
    failures_per_address: int = 20
    address_window_minutes: int = 15
    min_password_length: int = 12


class RetentionPolicy(BaseModel):
    """What ``kopa retention run`` removes, and where Rasa keeps its conversations.

    Rasa's tracker store is named by URL: ``tracker_store_url`` for its SQL store (the table
    ``events``), ``tracker_redis_url`` for its Redis store (production: Redis db 1); its Redis
    lock store (db 2) is taken per conversation while a tracker is changed.
    """

    # Free text borrowers typed (case words and details, notes) of cases resolved this long ago,
    # and finished inbox rows.
    days: int = 90
    # The console's sign-in attempts (its audit) are kept this long; its sessions go once expired.
    login_attempt_days: int = 90
    # Conversations idle this long are deleted; older events of active ones lose their text.
    tracker_days: int = 30
    tracker_store_url: str | None = None
    tracker_redis_url: str | None = None
    tracker_key_prefix: str = "tracker:"
    lock_redis_url: str | None = None
    lock_key_prefix: str = "lock:"
    # How long to wait for a conversation Rasa is answering before leaving it to the next run.
    lock_wait_seconds: float = 10.0


class HoldoutPolicy(BaseModel):
    """The reminder holdout: a fixed share of borrowers who get no non-essential reminders, so
    that the on-time payment rate of the reminded can be compared with theirs (the causal lift
    of reminders, ``api.kpis``). Which reminders count as non-essential is the notifier's
    decision (``notifier/holdout.py``).

    A borrower's arm is a stable hash of ``salt`` and their id (``api.borrowers.holdout``): the
    same borrower stays in the same arm for as long as the salt is kept. Raising ``share`` only
    moves reminded borrowers into the holdout, never the reverse; a new salt starts a new
    experiment (set ``started_on`` with it). ``share`` 0 disables the holdout.
    """

    share: float = Field(default=0.0, ge=0.0, le=0.5)
    salt: str = "kopa-holdout-1"
    # The first day of the experiment: the lift counts installments due from then on.
    started_on: date | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KOPA_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///var/kopa.db"
    # Connections one API process keeps (pool) and may open beyond it under load (overflow).
    # Their sum also caps the requests that hold a session at once (``api.core.deps``).
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    service_token: SecretStr = SecretStr(DEV_SERVICE_TOKEN)
    payment_webhook_secret: SecretStr = SecretStr(DEV_WEBHOOK_SECRET)
    hash_pepper: SecretStr = SecretStr(DEV_HASH_PEPPER)
    # The payment webhook's signed timestamp may be this far from the API's clock (replays
    # outside it are refused), and its body this large at most (413 beyond).
    payment_webhook_tolerance_seconds: int = 300
    payment_webhook_max_body_bytes: int = 16_384
    verification: VerificationPolicy = VerificationPolicy()
    promises: PromisePolicy = PromisePolicy()
    cases: CasePolicy = CasePolicy()
    retention: RetentionPolicy = RetentionPolicy()
    console: ConsolePolicy = ConsolePolicy()
    holdout: HoldoutPolicy = HoldoutPolicy()

    @property
    def database_connections(self) -> int:
        """The most connections one process opens to the database."""
        return self.database_pool_size + self.database_max_overflow

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
