"""Campaign policy and WhatsApp templates, read from the versioned files in ``config/``.

``config/campaigns.yml`` holds the steps, quiet hours, caps and rate limits (defaults, then per
country, then per branch: the most specific wins); ``config/whatsapp_templates.yml`` the approved
template name and language per message key and locale. Paths can be overridden with
``KOPA_NOTIFY_CAMPAIGNS`` / ``KOPA_NOTIFY_TEMPLATES`` (tests, a deployment's own policy).
"""

from __future__ import annotations

import os
from datetime import time
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


class QuietHours(BaseModel):
    start: time = time(8, 0)
    end: time = time(19, 0)


class Caps(BaseModel):
    per_day: int = 1
    per_7_days: int = 3
    per_30_days: int = 10


class Incentives(BaseModel):
    streaks: list[int] = Field(default_factory=lambda: [3, 6])
    early_repayment_after_share: float = 0.5


class PolicyOverride(BaseModel):
    quiet_hours: QuietHours | None = None
    closed_weekdays: list[int] | None = None
    send_time: time | None = None
    caps: Caps | None = None
    promise_grace_days: int | None = None
    installment_steps: list[int] | None = None
    incentives: Incentives | None = None
    group_meeting_days_before: int | None = None
    high_risk_first_reminder_days_before: int | None = None
    holidays: list[str] = Field(default_factory=list)


class Policy(BaseModel):
    """The resolved policy for one branch."""

    quiet_hours: QuietHours = QuietHours()
    closed_weekdays: list[int] = Field(default_factory=lambda: [6])
    send_time: time = time(9, 0)
    caps: Caps = Caps()
    promise_grace_days: int = 2
    installment_steps: list[int] = Field(default_factory=lambda: [-3, -1, 0, 1, 3, 7, 14, 30])
    incentives: Incentives = Incentives()
    group_meeting_days_before: int = 1
    # A loan in the officers' high-risk band gets its first pre-due reminder this many days
    # before the due date instead (moved, not added); None leaves every loan on the same steps.
    high_risk_first_reminder_days_before: int | None = None
    holidays: list[str] = Field(default_factory=list)

    def for_high_risk(self) -> Policy:
        """The policy of a loan in the high-risk band: its earliest pre-due step moved earlier,
        when the setting asks for earlier. Caps, quiet hours, closed days and the messages'
        wording stay exactly the policy's."""
        days = self.high_risk_first_reminder_days_before
        before = [step for step in self.installment_steps if step < 0]
        if days is None or not before or min(before) <= -days:
            return self
        steps = sorted({*self.installment_steps, -days} - {min(before)})
        return self.model_copy(update={"installment_steps": steps})

    def merged(self, override: PolicyOverride | None) -> Policy:
        if override is None:
            return self
        values = self.model_dump()
        for name, value in override.model_dump(exclude_none=True).items():
            values[name] = (values["holidays"] + value) if name == "holidays" else value
        return Policy.model_validate(values)


# Share of a channel's rate kept in reserve for sends that reach the provider late
# (ratelimit.Limits.lateness_allowed).
DEFAULT_HEADROOM = 0.04


class ChannelLimits(BaseModel):
    per_second: float
    per_chat_per_second: float = 1.0
    headroom: float = DEFAULT_HEADROOM


class Delivery(BaseModel):
    lease_seconds: float = 30.0
    max_attempts: int = 5
    backoff_base_seconds: float = 5.0
    backoff_cap_seconds: float = 1800.0
    retry_after_slack_seconds: float = 0.3
    whatsapp_session_hours: int = 24


class CampaignConfig(BaseModel):
    version: int
    defaults: Policy = Policy()
    countries: dict[str, PolicyOverride] = Field(default_factory=dict)
    branches: dict[str, PolicyOverride] = Field(default_factory=dict)
    channels: dict[str, ChannelLimits] = Field(
        default_factory=lambda: {
            "telegram": ChannelLimits(per_second=25, per_chat_per_second=1),
            "whatsapp": ChannelLimits(per_second=80, per_chat_per_second=1),
        }
    )
    delivery: Delivery = Delivery()

    def policy_for(self, *, country: str, branch_code: str) -> Policy:
        return self.defaults.merged(self.countries.get(country)).merged(
            self.branches.get(branch_code)
        )


class TemplateRef(BaseModel):
    name: str
    language: str
    # Message arguments, in the order of the template's body placeholders.
    parameters: list[str] = Field(default_factory=list)


class TemplateConfig(BaseModel):
    version: int
    templates: dict[str, dict[str, TemplateRef]] = Field(default_factory=dict)

    def find(self, message_key: str, locale: str) -> TemplateRef | None:
        return self.templates.get(message_key, {}).get(locale)


def _read_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@cache
def _parsed_campaigns(path: Path) -> CampaignConfig:
    return CampaignConfig.model_validate(_read_yaml(path))


@cache
def _parsed_templates(path: Path) -> TemplateConfig:
    return TemplateConfig.model_validate(_read_yaml(path))


def load_campaigns(path: str | None = None) -> CampaignConfig:
    """The campaign policy: ``path``, else ``KOPA_NOTIFY_CAMPAIGNS``, else ``config/``.

    The file is read once per path; every call returns a deep copy of its own, which the caller
    may change. A cached instance handed to every caller let one caller's change (a test's
    faster rates and 1.5 s leases) reach every later planner and deliverer of the process.
    """
    chosen = Path(path or os.environ.get("KOPA_NOTIFY_CAMPAIGNS") or CONFIG_DIR / "campaigns.yml")
    return _parsed_campaigns(chosen).model_copy(deep=True)


def load_templates(path: str | None = None) -> TemplateConfig:
    """The approved WhatsApp templates, read once per path; a deep copy of its own each call
    (see :func:`load_campaigns`)."""
    chosen = Path(
        path or os.environ.get("KOPA_NOTIFY_TEMPLATES") or CONFIG_DIR / "whatsapp_templates.yml"
    )
    return _parsed_templates(chosen).model_copy(deep=True)


@cache
def load_banned_phrases() -> dict[str, list[str]]:
    data = _read_yaml(CONFIG_DIR / "banned_phrases.yml")
    return {key: [str(p) for p in value] for key, value in data.items() if key != "version"}
