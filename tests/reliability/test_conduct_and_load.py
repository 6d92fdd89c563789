"""Reliability matrix, conduct and load rows: L-1, L-4, F-3, F-12, F-13, P-5, K-1, K-2, K-4,
K-5, K-6 (``shared/guide/conduct-and-reliability.md`` section 5). L-3 (L-1 during L-2) needs the
gateway rig: it is in ``test_gateway.py``.

Each test drives the notifier as production runs it: the planner and the deliverer (or real
``kopa notify worker`` processes) on PostgreSQL, the shared rate limiter on Redis, the real
Telegram and WhatsApp gateways against the fake providers (``bot/fakes``), which also measure
what reached them. Sizes smaller than the row's are named in each docstring, with the benchmark
that runs the full size.

The fixtures and factories of ``tests/notifier`` are imported explicitly below. Those modules
import ``notify_factory`` and ``conftest`` as top-level names (their folder has no package), so
they are loaded here under names of their own.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import holidays
import pytest
import yaml
from babel.messages.pofile import read_po
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.borrowers.models import ChannelIdentity
from api.branches.models import Officer, StaffRole
from api.cases import officers as case_officers
from api.cases import service as cases
from api.cases.models import Case, CaseKind, CaseOutcome
from api.core.db import build_engine
from api.ledger.models import ContactEvent
from api.loans.models import Loan
from api.outbox.models import OutboxMessage, OutboxStatus
from api.promises import service as promises
from bot.channels.base import ChannelGateway
from bot.channels.telegram import TelegramGateway
from bot.channels.whatsapp import WhatsAppGateway
from bot.fakes.common import Fault, FaultSpec
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from bot.fakes.whatsapp import FakeWhatsApp
from i18n import LOCALES_DIR, SUPPORTED_LOCALES, day, moment, money, number, render
from i18n.messages import Plural, load_registry
from notifier.config import CampaignConfig, Policy, load_banned_phrases, load_campaigns
from notifier.delivery import Deliverer
from notifier.outbox import claim
from notifier.planner import Planner
from notifier.ratelimit import Limits, LocalRateLimiter
from notifier.render import COMPLAINT_KEY, LIMITED_KEY, OPT_OUT_KEY, build_outbound
from notifier.rules import CLOCK_SKEW_MARGIN, Calendar, Snapshot, Window, decide

NOTIFIER_TESTS = Path(__file__).resolve().parents[1] / "notifier"
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def _load_notifier_module(name: str, filename: str) -> ModuleType:
    """Import ``tests/notifier/<filename>`` as ``name``, its ``conftest`` being the notifier's."""
    if str(NOTIFIER_TESTS) not in sys.path:
        sys.path.append(str(NOTIFIER_TESTS))  # for its ``import notify_factory``
    spec = importlib.util.spec_from_file_location(name, NOTIFIER_TESTS / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    ours = sys.modules.get("conftest")
    sys.modules[name] = module
    if "notifier_fixtures" in sys.modules:
        sys.modules["conftest"] = sys.modules["notifier_fixtures"]
    try:
        spec.loader.exec_module(module)
    finally:
        if ours is not None:
            sys.modules["conftest"] = ours
        else:
            sys.modules.pop("conftest", None)
    return module


notifier_fixtures = _load_notifier_module("notifier_fixtures", "conftest.py")
notifier_workers = _load_notifier_module("notifier_workers", "test_notify_workers.py")
f = notifier_workers.f  # tests/notifier/notify_factory.py, as the notifier tests import it

# The notifier tests' fixtures, used here by name.
bound = notifier_fixtures.bound
fake_tg = notifier_fixtures.fake_tg
fake_wa = notifier_fixtures.fake_wa
telegram = notifier_fixtures.telegram
whatsapp = notifier_fixtures.whatsapp
fresh_pg = notifier_workers.fresh_pg
redis_url = notifier_workers.redis_url
Bound = notifier_fixtures.Bound
telegram_settings = notifier_fixtures.telegram_settings
whatsapp_settings = notifier_fixtures.whatsapp_settings


@pytest.fixture
def db_url(postgres_url: str) -> str:
    """Production runs the notifier on PostgreSQL: ``bound`` joins a PostgreSQL transaction."""
    return postgres_url


FAST = {"telegram": Limits(1000, 1000), "whatsapp": Limits(1000, 1000)}
CAMPAIGN_STATES_LEFT_OPEN = (
    OutboxStatus.pending,
    OutboxStatus.retry,
    OutboxStatus.claimed,
    OutboxStatus.ready,
    OutboxStatus.sending,
)
# Tuesday 1 December 2026, 09:30 in Nairobi.
AT = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
TODAY = date(2026, 12, 1)
NAIROBI = ZoneInfo("Africa/Nairobi")


# -- shared helpers --------------------------------------------------------------------------
class GatewayLoop:
    """An event loop and a started Telegram gateway kept across hypothesis examples (which are
    synchronous): starting python-telegram-bot for every example cost more than the example."""

    def __init__(self, url: str, read_timeout: float = 1.0) -> None:
        self.loop = asyncio.new_event_loop()
        self.gateway = TelegramGateway(telegram_settings(url, read_timeout=read_timeout))
        self.run(self.gateway.start(receive=False))

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def settle(
        self, factory: Callable[[], Session], session: Session, start: datetime, until: datetime
    ) -> None:
        deliverer = _deliverer(factory, {"telegram": self.gateway})
        try:
            self.run(_settle(deliverer, session, start, until=until))
        finally:
            deliverer.close()

    def close(self) -> None:
        self.run(self.gateway.aclose())
        self.loop.close()


@pytest.fixture
def gateway_loop(fake_tg: tuple[FakeTelegram, ServerThread]) -> Iterator[GatewayLoop]:
    loop = GatewayLoop(fake_tg[1].url, read_timeout=0.3)
    yield loop
    loop.close()


class Oracle:
    """The send window of one branch, computed independently of ``notifier.rules``: local
    hours from the policy, Sundays (the policy's closed weekdays), the country's public holidays
    from the ``holidays`` package and the branch's own closed days."""

    def __init__(self, policy: Policy, tz: str, country: str, extra: Sequence[str]) -> None:
        self.zone = ZoneInfo(tz)
        self.start, self.end = policy.quiet_hours.start, policy.quiet_hours.end
        self.closed_weekdays = set(policy.closed_weekdays)
        self.country = country
        self.extra = {date.fromisoformat(d) for d in [*extra, *policy.holidays]}

    def closed(self, day_: date) -> bool:
        if day_.weekday() in self.closed_weekdays or day_ in self.extra:
            return True
        try:
            return day_ in holidays.country_holidays(self.country, years=day_.year)
        except NotImplementedError:
            return False

    def allows(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        return not self.closed(local.date()) and self.start <= local.time() < self.end


def _rows(session: Session, *where: Any) -> list[OutboxMessage]:
    session.expire_all()
    return list(session.scalars(select(OutboxMessage).where(*where).order_by(OutboxMessage.id)))


async def _settle(
    deliverer: Deliverer,
    session: Session,
    start: datetime,
    *,
    until: datetime,
    before_each: Callable[[datetime], None] | None = None,
) -> None:
    """Deliver at ``start``, then at each later instant a row comes due, until ``until``:
    simulated time, jumping from one due row to the next (rescheduled rows included)."""
    at = start
    for _ in range(400):
        if before_each is not None:
            before_each(at)
        await deliverer.run_once(now=at, limit=500)
        session.expire_all()
        due = session.scalar(
            select(func.min(OutboxMessage.send_at)).where(
                OutboxMessage.status.in_([OutboxStatus.pending, OutboxStatus.retry])
            )
        )
        if due is None or due > until:
            return
        at = max(at + timedelta(milliseconds=1), due)
    raise AssertionError("delivery did not settle")


def _deliverer(
    factory: Callable[[], Session],
    gateways: dict[str, ChannelGateway],
    config: CampaignConfig | None = None,
    worker_id: str = "matrix",
) -> Deliverer:
    return Deliverer(
        session_factory=factory,
        gateways=gateways,
        worker_id=worker_id,
        limiter=LocalRateLimiter(FAST),
        config=config,
    )


# == K-5 template lint ========================================================================
CAMPAIGN_AREAS = {"reminder", "promise", "incentive", "group"}
# How each language names a complaint: the words the bot's NLU takes as the ``complaint`` intent
# (nlu/data/nlu/<lang>.yml), so a borrower who copies them reaches the complaint flow.
COMPLAINT_WORDS = {
    "en": ("complaint", "complain"),
    "fr": ("réclamation", "plainte"),
    "es": ("queja", "reclamo"),
    "sw": ("malalamiko", "kulalamika"),
}
# Incentives that offer something state its conditions and cost (rule C-7): these words, in the
# message's language, must appear.
INCENTIVE_TERMS = {
    "notify.incentive.early_repayment": {
        "en": ("conditions", "fee", "interest"),
        "fr": ("conditions", "frais", "intérêts"),
        "es": ("condiciones", "comisión", "intereses"),
        "sw": ("masharti", "ada", "riba"),
    },
    "notify.incentive.next_cycle": {
        "en": ("approval", "review"),
        "fr": ("accord", "examen"),
        "es": ("aprobación", "revisión"),
        "sw": ("idhini", "ukaguzi"),
    },
}
SAMPLE_ARGS: dict[str, Any] = {
    "amount": money("1500.00", "KES"),
    "account": "AC000123",
    "due_date": day(date(2026, 12, 4)),
    "promised_date": day(date(2026, 12, 4)),
    "cycle": number(2),
    "group": "Umoja",
    "meeting_at": moment(datetime(2026, 12, 3, 7, 0, tzinfo=UTC), "Africa/Nairobi"),
    "place": "Market hall",
}


def _campaign_keys() -> list[str]:
    registry = load_registry()
    return sorted(
        k for k in registry if k.split(".")[0] == "notify" and k.split(".")[1] in CAMPAIGN_AREAS
    )


def _sources(key: str) -> list[str]:
    message = load_registry()[key]
    return [message.singular, message.plural] if isinstance(message, Plural) else [message]


def _has_phrase(text_: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", text_.lower()) is not None


def test_K5_every_campaign_template_in_every_language_has_opt_out_complaint_path_and_no_banned_phrase() -> (  # noqa: E501
    None
):
    """K-5 on the real catalogs: every campaign message (reminders, promises, incentives, group
    meetings and the limited text) as the borrower reads it, in en/fr/es/sw: translated in the
    ``.po`` catalog, ending with the opt-out line (its STOP keyword), naming a complaint path in
    the borrower's language, free of every banned phrase of ``config/banned_phrases.yml``
    (threats, legal bluffs, shaming; English phrases checked in every language too), and the
    offers stating their conditions and cost."""
    banned = load_banned_phrases()
    keys = [*_campaign_keys(), LIMITED_KEY]
    problems: list[str] = []
    catalogs = {
        locale: read_po((LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb"))
        for locale in SUPPORTED_LOCALES
    }
    for locale in SUPPORTED_LOCALES:
        opt_out = render(OPT_OUT_KEY, locale)
        if "STOP" not in opt_out:
            problems.append(f"{locale}: opt-out line without the STOP keyword: {opt_out!r}")
        phrases = list(dict.fromkeys([*banned.get(locale, []), *banned["en"]]))
        for key in keys:
            for source in _sources(key)[:1]:  # a plural is filed under its singular
                entry = catalogs[locale].get(source)
                translated = entry is not None and all(
                    s
                    for s in (entry.string if isinstance(entry.string, tuple) else (entry.string,))
                )
                if locale != "en" and (not translated or entry is None or entry.fuzzy):
                    problems.append(f"{locale}/{key}: not translated in the catalog")
            for count in (1, 3):
                args = {**SAMPLE_ARGS, "count": count}
                outbound = build_outbound(
                    channel="telegram",
                    recipient="1",
                    purpose="reminder",
                    message_key=key,
                    locale=locale,
                    args=args,
                )
                said = outbound.text
                if not said.endswith(opt_out):
                    problems.append(f"{locale}/{key}: no opt-out line")
                if not any(_has_phrase(said, w) for w in COMPLAINT_WORDS[locale]):
                    problems.append(f"{locale}/{key}: no complaint path")
                hits = [p for p in phrases if _has_phrase(said, p)]
                if hits:
                    problems.append(f"{locale}/{key}: banned phrases {hits}")
                for term in INCENTIVE_TERMS.get(key, {}).get(locale, ()):
                    if term.lower() not in said.lower():
                        problems.append(f"{locale}/{key}: offer without {term!r}")
    # The lint itself catches what it must (a check that cannot fail proves nothing).
    threat = "Pay now or we take legal action and tell your neighbours. Reply STOP."
    assert [p for p in banned["en"] if _has_phrase(threat, p)] == [
        "legal action",
        "your neighbours",
    ]
    assert not problems, "\n".join(sorted(set(problems)))


# == K-1 and F-13: the send window over random instants, zones, DST and holiday calendars =====
# Zones with DST (some at midnight, some by 30 minutes, Morocco's Ramadan shift), odd offsets,
# both hemispheres, and the branches' own.
ZONES = (
    "Africa/Nairobi",
    "Africa/Dakar",
    "Africa/Casablanca",
    "America/Mexico_City",
    "America/New_York",
    "America/Havana",
    "America/Santiago",
    "America/St_Johns",
    "America/Sao_Paulo",
    "Europe/Paris",
    "Europe/London",
    "Asia/Manila",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tehran",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Etc/GMT+11",
)
COUNTRIES = (
    "KE",
    "SN",
    "MA",
    "MX",
    "US",
    "CU",
    "CL",
    "CA",
    "BR",
    "FR",
    "GB",
    "PH",
    "IN",
    "NP",
    "AU",
    "NZ",
    "ZZ",
)
YEARS = (2025, 2028)


@cache
def _transitions(tz: str) -> tuple[datetime, ...]:
    """The instants in YEARS at which ``tz`` changes its UTC offset (to the minute)."""
    zone = ZoneInfo(tz)
    found: list[datetime] = []
    at = datetime(YEARS[0], 1, 1, tzinfo=UTC)
    end = datetime(YEARS[1], 12, 31, tzinfo=UTC)
    step = timedelta(hours=6)
    while at < end:
        if at.astimezone(zone).utcoffset() != (at + step).astimezone(zone).utcoffset():
            lo, hi = at, at + step
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(zone).utcoffset() == lo.astimezone(zone).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        at += step
    return tuple(found)


@st.composite
def instants_in(draw: st.DrawFn, tz: str) -> datetime:
    """A random instant, half of the time within a day of one of the zone's DST changes."""
    changes = _transitions(tz)
    if changes and draw(st.booleans()):
        change = draw(st.sampled_from(changes))
        return change + timedelta(seconds=draw(st.integers(-86_400, 86_400)))
    return draw(
        st.datetimes(
            min_value=datetime(YEARS[0], 1, 1),
            max_value=datetime(YEARS[1], 12, 31),
            timezones=st.just(UTC),
        )
    )


@st.composite
def policies(draw: st.DrawFn, vary: bool = True) -> tuple[Policy, str, str]:
    """The configured policy of a random country, or (``vary``) half of the time a random window
    with random closed weekdays."""
    country = draw(st.sampled_from(COUNTRIES))
    tz = draw(st.sampled_from(ZONES))
    config = load_campaigns()
    policy = config.policy_for(country=country, branch_code="-")
    if vary and draw(st.booleans()):
        start = draw(st.integers(6, 10))
        policy = policy.model_copy(
            update={
                "quiet_hours": policy.quiet_hours.model_copy(
                    update={
                        "start": clock_time(start, draw(st.sampled_from([0, 30]))),
                        "end": clock_time(draw(st.integers(start + 2, 22))),
                    }
                ),
                "closed_weekdays": sorted(draw(st.frozensets(st.integers(0, 6), max_size=2))),
            }
        )
    return policy, tz, country


def _window_of(policy: Policy, tz: str, country: str, extra: Sequence[str]) -> Window:
    return Window(
        tz=tz,
        start=policy.quiet_hours.start,
        end=policy.quiet_hours.end,
        calendar=Calendar(
            country=country,
            closed_weekdays=frozenset(policy.closed_weekdays),
            extra=frozenset(date.fromisoformat(d) for d in [*extra, *policy.holidays]),
        ),
    )


@st.composite
def skewed_cases(draw: st.DrawFn) -> tuple[Policy, str, str, list[str], datetime, int, str]:
    policy, tz, country = draw(policies())
    at = draw(instants_in(tz))
    local = at.astimezone(ZoneInfo(tz)).date()
    extra = sorted(
        {
            (local + timedelta(days=d)).isoformat()
            for d in draw(st.lists(st.integers(-1, 5), max_size=3))
        }
    )
    skew = draw(st.integers(-120, 120))
    purpose = draw(st.sampled_from(["reminder", "incentive"]))
    return policy, tz, country, extra, at, skew, purpose


@settings(max_examples=10_000, deadline=None, derandomize=True)
@given(case=skewed_cases())
def test_F13_no_send_outside_the_borrower_local_window_across_dst_zones_and_clock_skew(
    case: tuple[Policy, str, str, list[str], datetime, int, str],
) -> None:
    """F-13, 10 000 random instants (half within a day of a DST change of their zone) in 20 zones
    and 17 holiday calendars, each judged by the rules the planner and the deliverer use
    (``notifier.rules.decide``) on a worker whose clock is off by up to +/-2 minutes.

    A "send" leaves at the true instant; a "reschedule" leaves when the worker's clock reads the
    new time. Either must fall inside the borrower's local window on an open day by the true
    clock, checked by an oracle that reads the zone and the ``holidays`` calendar itself. The
    first assertion holds the rules to it on an exact clock, the second on a skewed one."""
    policy, tz, country, extra, true_at, skew, purpose = case
    oracle = Oracle(policy, tz, country, extra)
    window = _window_of(policy, tz, country, extra)

    exact = decide(Snapshot(at=true_at, purpose=purpose, channel="telegram", window=window))
    assert exact.action in {"send", "reschedule"}, "a late message was dropped"
    assert oracle.allows(exact.send_at), (
        f"exact clock: leaves at {exact.send_at.astimezone(oracle.zone)}"
    )

    worker_clock = true_at + timedelta(seconds=skew)
    judged = decide(Snapshot(at=worker_clock, purpose=purpose, channel="telegram", window=window))
    leaves = true_at if judged.action == "send" else judged.send_at - timedelta(seconds=skew)
    assert oracle.allows(leaves), (
        f"clock skew {skew:+d} s: {judged.action} leaves at {leaves.astimezone(oracle.zone)} "
        f"local (window {policy.quiet_hours.start}-{policy.quiet_hours.end})"
    )


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
@pytest.mark.postgres
def test_K1_planned_and_delivered_campaigns_never_leave_outside_the_window_or_on_a_holiday(
    bound: Bound, gateway_loop: GatewayLoop, data: st.DataObject
) -> None:
    """K-1 through the whole pipeline on PostgreSQL: random schedules (loans with installments
    due -35..+5 days around a random planning instant, half of them within a day of a DST
    change), random zones and holiday calendars (the country's public holidays and up to three
    branch closed days), planned by the planner and delivered by the deliverer through the real
    Telegram gateway to the fake Bot API, in simulated time until nothing is left to send.

    0 sends outside the local window or on a closed day (an independent oracle), and no late
    message dropped: every message judged outside the window was rescheduled and later sent,
    or gave way to a cap. 20 examples (about 10 s)."""
    policy, tz, country = data.draw(policies(vary=False))
    at = data.draw(instants_in(tz))
    local_today = at.astimezone(ZoneInfo(tz)).date()
    extra = sorted(
        {
            (local_today + timedelta(days=d)).isoformat()
            for d in data.draw(st.lists(st.integers(-2, 6), max_size=3))
        }
    )
    offsets = data.draw(st.lists(st.integers(-35, 5), min_size=1, max_size=4))
    oracle = Oracle(policy, tz, country, extra)

    session = bound.session
    savepoint = session.begin_nested()
    try:
        br = f.branch(session, country=country, timezone=tz, extra_holidays=extra)
        people = [f.borrower(session, br) for _ in offsets]
        loans = [
            f.loan(
                session, person, first_due=local_today - timedelta(days=o), count=2, every_days=7
            )
            for person, o in zip(people, offsets, strict=True)
        ]
        Planner().plan(session, at, write=True, loan_ids=[item.id for item in loans])
        session.flush()

        gateway_loop.settle(bound.factory, session, at, until=at + timedelta(days=60))
        rows = _rows(session, OutboxMessage.loan_id.in_([item.id for item in loans]))
        events = session.scalars(
            select(ContactEvent).where(ContactEvent.loan_id.in_([item.id for item in loans]))
        ).all()
    finally:
        savepoint.rollback()

    for row in rows:
        if row.status == OutboxStatus.sent:
            assert row.sent_at is not None
            assert oracle.allows(row.sent_at), (
                f"{row.step} sent at {row.sent_at.astimezone(oracle.zone)} local ({country})"
            )
        else:
            assert row.status == OutboxStatus.suppressed, f"{row.step} left {row.status}"
            assert row.last_error not in {"quiet_hours", "holiday"}, "a late message was dropped"
    sent_events = [e for e in events if e.decision == "sent"]
    assert all(oracle.allows(e.at) for e in sent_events)
    assert len(sent_events) == sum(1 for r in rows if r.status == OutboxStatus.sent)


# == K-2 caps per loan under storms ===========================================================
CAPS = ((1, 1), (7, 3), (30, 10))  # (days, most attempts) per loan: 1/day, 3/7 days, 10/30 days


def _outbox_row(
    person: Any,
    loan: Loan,
    chat: str,
    key: str,
    *,
    purpose: str,
    send_at: datetime,
    status: OutboxStatus = OutboxStatus.pending,
) -> OutboxMessage:
    """One outbox row to ``chat`` about ``loan``: a reminder or incentive of a campaign, or a
    reply to something the borrower asked (``case_update``)."""
    message, args = {
        "reminder": (
            "notify.reminder.upcoming",
            {
                "amount": money("1000.00", "KES"),
                "account": loan.account_reference,
                "due_date": day(TODAY),
            },
        ),
        "incentive": ("notify.incentive.thanks", {"account": loan.account_reference}),
        "case_update": (
            "cases.update.acknowledged",
            {"reference": "HS-0001", "officer_name": "Grace"},
        ),
    }[purpose]
    went = status in (OutboxStatus.sent,)
    return OutboxMessage(
        business_key=key,
        purpose=purpose,
        step="storm",
        is_collection=purpose == "reminder",
        borrower_id=person.id,
        loan_id=loan.id,
        channel="telegram",
        recipient=chat,
        locale="en",
        message_key=message,
        args=args,
        buttons=[],
        status=status,
        send_at=send_at,
        sent_at=send_at if went else None,
        attempts=0 if status == OutboxStatus.pending else 1,
    )


def _chat_of(session: Session, borrower_id: int) -> str:
    return str(
        session.scalar(
            select(ChannelIdentity.external_user_id).where(
                ChannelIdentity.borrower_id == borrower_id
            )
        )
    )


def _cap_breaches(days: Sequence[date], new: Sequence[date]) -> list[str]:
    """Windows of 1, 7 and 30 days holding one of ``new`` and more attempts than the cap."""
    breaches = []
    for d in new:
        for span, most in CAPS:
            for first in (d - timedelta(days=k) for k in range(span)):
                count = sum(1 for x in days if first <= x < first + timedelta(days=span))
                if count > most:
                    breaches.append(f"{count} attempts in the {span} days from {first}")
    return sorted(set(breaches))


@pytest.mark.postgres
def test_K2_caps_per_loan_hold_under_reminder_storms_counting_unknown_outcomes(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], gateway_loop: GatewayLoop
) -> None:
    """K-2 through the deliverer on PostgreSQL, the fake Bot API answering.

    Storms: two loans of one borrower, each with a random history of the last 30 days (sent,
    unknown outcome, failed, suppressed) and 5..40 campaign messages (reminders, incentives)
    due at random instants over 40 days, with the borrower's own requests answered in between
    (case updates). Half of the storms start with a send that times out after reaching the
    provider (an ``unknown`` outcome). Delivered in simulated time until nothing is left.

    Per loan, counting sent and unknown outcomes of the history and of the storm: <= 1 a local
    day, <= 3 in any 7 days, <= 10 in any 30. Replies to the borrower are exempt: never held
    back by a cap, and never counted (a scripted day checks that a reminder still goes after
    three replies). 8 storms (about 12 s)."""
    fake = fake_tg[0]
    session = bound.session

    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        tz=st.sampled_from(ZONES),
        start=st.datetimes(
            min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 1), timezones=st.just(UTC)
        ),
        history=st.lists(
            st.tuples(
                st.integers(0, 1),
                st.integers(60, 30 * 86_400),
                st.sampled_from(["sent", "unknown", "failed", "suppressed"]),
            ),
            max_size=12,
        ),
        storm=st.lists(
            st.tuples(
                st.integers(0, 1),
                st.integers(0, 40 * 86_400),
                st.sampled_from(["reminder", "incentive"]),
            ),
            min_size=5,
            max_size=40,
        ),
        replies=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 40 * 86_400)), max_size=6),
        first_times_out=st.booleans(),
    )
    def storms(
        tz: str,
        start: datetime,
        history: list[tuple[int, int, str]],
        storm: list[tuple[int, int, str]],
        replies: list[tuple[int, int]],
        first_times_out: bool,
    ) -> None:
        zone = ZoneInfo(tz)
        savepoint = session.begin_nested()
        try:
            br = f.branch(session, country="ZZ", timezone=tz)
            person = f.borrower(session, br)
            loans = [f.loan(session, person, first_due=date(2029, 1, 1), count=1) for _ in range(2)]
            chat = _chat_of(session, person.id)
            loan_ids, person_id = [loan.id for loan in loans], person.id
            n = 0
            for index, before, status in history:
                n += 1
                session.add(
                    _outbox_row(
                        person,
                        loans[index],
                        chat,
                        f"k2:{chat}:{n}",
                        purpose="reminder",
                        send_at=start - timedelta(seconds=before),
                        status=OutboxStatus(status),
                    )
                )
            for index, after, purpose in storm:
                n += 1
                session.add(
                    _outbox_row(
                        person,
                        loans[index],
                        chat,
                        f"k2:{chat}:{n}",
                        purpose=purpose,
                        send_at=start + timedelta(seconds=after),
                    )
                )
            for index, after in replies:
                n += 1
                session.add(
                    _outbox_row(
                        person,
                        loans[index],
                        chat,
                        f"k2:{chat}:{n}",
                        purpose="case_update",
                        send_at=start + timedelta(seconds=after),
                    )
                )
            session.flush()
            history_ids = {
                r.id
                for r in _rows(
                    session,
                    OutboxMessage.status != OutboxStatus.pending,
                    OutboxMessage.borrower_id == person_id,
                )
            }
            if first_times_out:
                fake.state.faults.append(
                    Fault(FaultSpec(kind="timeout", recipient=chat, times=1, delay=0.6))
                )

            gateway_loop.settle(bound.factory, session, start, until=start + timedelta(days=80))
            rows = _rows(session, OutboxMessage.borrower_id == person_id)
            session.expunge_all()
        finally:
            fake.state.faults.clear()
            savepoint.rollback()

        for loan_id in loan_ids:
            attempts = [
                r
                for r in rows
                if r.loan_id == loan_id
                and r.purpose in {"reminder", "incentive"}
                and r.status in (OutboxStatus.sent, OutboxStatus.unknown)
            ]
            days = [(r.sent_at or r.send_at).astimezone(zone).date() for r in attempts]
            new = [
                (r.sent_at or r.send_at).astimezone(zone).date()
                for r in attempts
                if r.id not in history_ids
            ]
            assert _cap_breaches(days, new) == []
        for reply in (r for r in rows if r.purpose == "case_update"):
            assert reply.status in (OutboxStatus.sent, OutboxStatus.unknown), reply.last_error
        if first_times_out:
            went = [
                r for r in rows if r.id not in history_ids and r.status != OutboxStatus.suppressed
            ]
            first = min(went, key=lambda r: (r.sent_at or r.send_at, r.id), default=None)
            if first is not None and first.status != OutboxStatus.sent:
                assert first.status == OutboxStatus.unknown  # never resent
                assert len(fake.state.query("sendMessage", chat)) == sum(
                    1
                    for r in rows
                    if r.id not in history_ids
                    and r.status in (OutboxStatus.sent, OutboxStatus.unknown)
                )

    storms()

    # Replies to the borrower neither wait for the caps nor count against them.
    br = f.branch(session)  # Nairobi: Tuesday 1 December 2026, 09:30
    person = f.borrower(session, br)
    loan = f.loan(session, person, first_due=date(2029, 1, 1), count=1)
    chat = _chat_of(session, person.id)
    tomorrow = AT + timedelta(days=1)
    script = [
        ("reminder", AT),
        ("case_update", AT + timedelta(hours=1)),  # the day's cap is spent: a reply still goes
        *[("case_update", tomorrow + timedelta(minutes=m)) for m in (0, 10, 20)],
        ("reminder", tomorrow + timedelta(hours=1)),  # three replies before it: it still goes
    ]
    for n, (purpose, when) in enumerate(script):
        session.add(
            _outbox_row(person, loan, chat, f"k2:script:{n}", purpose=purpose, send_at=when)
        )
    session.commit()

    gateway_loop.settle(bound.factory, session, AT, until=AT + timedelta(days=3))
    outcome = [(r.purpose, r.status) for r in _rows(session, OutboxMessage.loan_id == loan.id)]
    assert outcome == [(purpose, OutboxStatus.sent) for purpose, _ in script]


# == K-4 promises and hardship hold collection back ===========================================
def _officer(session: Session, branch_id: int, chat: str) -> Officer:
    officer = Officer(
        branch_id=branch_id,
        name="Grace Otieno",
        role=StaffRole.officer,
        channel="telegram",
        chat_id=chat,
        locale="en",
    )
    session.add(officer)
    session.flush()
    return officer


def _local(day_: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day_, clock_time(hour, minute), tzinfo=NAIROBI).astimezone(UTC)


async def test_K4_no_collection_reminder_while_a_promise_or_a_hardship_case_holds_it(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    """K-4 over 15 days of a Nairobi branch on PostgreSQL, planned every morning at 07:00 and
    delivered through the real Telegram gateway until the evening, with both holds recorded by
    the loan API's own services at 08:00 on the first day, after that day's reminders were
    planned (so the deliverer must stop them at send time):

    - a promise to pay on Saturday 5 December: 0 collection reminders until its date + the
      2 grace days (Monday 7 December) — the promise's own reminder on its day excepted, which
      thanks the borrower for their plan — then collection resumes;
    - a hardship case, resolved by its officer on day 10 at 10:00: 0 collection reminders
      while it is open, then collection resumes."""
    session = bound.session
    br = f.branch(session)
    officer = _officer(session, br.id, "9000001")
    promised_person, hardship_person = f.borrower(session, br), f.borrower(session, br)
    hardship_person.officer_id = officer.id
    # Installment 1 fell due on 30 November: steps +1, +3, +7, +14 on 1, 3, 7 and 14 December.
    promised_loan = f.loan(session, promised_person, first_due=TODAY - timedelta(days=1), count=3)
    hardship_loan = f.loan(session, hardship_person, first_due=TODAY - timedelta(days=1), count=3)
    session.commit()
    promised_until = date(2026, 12, 5) + timedelta(days=2)
    deliverer = _deliverer(bound.factory, {"telegram": telegram})
    resolved_at: datetime | None = None
    try:
        for offset in range(15):
            today = TODAY + timedelta(days=offset)
            Planner().plan(session, _local(today, 7), write=True)
            session.commit()
            if offset == 0:
                promises.create_promise(
                    session=session,
                    borrower=promised_person,
                    loan=promised_loan,
                    amount=promised_loan.principal / 6,
                    promised_date=date(2026, 12, 5),
                    channel="telegram",
                    now=_local(today, 8),
                )
                cases.open_case(
                    session=session,
                    borrower=hardship_person,
                    kind=CaseKind.hardship,
                    now=_local(today, 8),
                    channel="telegram",
                    loan=hardship_loan,
                )
                session.commit()
            await _settle(deliverer, session, _local(today, 9), until=_local(today, 9, 59))
            if offset == 10:
                resolved_at = _local(today, 10)
                case = session.scalar(select(Case).where(Case.borrower_id == hardship_person.id))
                assert case is not None
                case_officers.act(
                    session=session,
                    reference=case.reference,
                    action="resolve",
                    officer_chat_id=officer.chat_id or "",
                    officer_channel="telegram",
                    now=resolved_at,
                    outcome=CaseOutcome.plan_agreed,
                )
                session.commit()
            await _settle(deliverer, session, _local(today, 10, 1), until=_local(today, 18))
    finally:
        deliverer.close()

    def sent_collection(loan: Loan) -> list[tuple[str, date]]:
        return [
            (row.step or "", (row.sent_at or row.send_at).astimezone(NAIROBI).date())
            for row in _rows(session, OutboxMessage.loan_id == loan.id)
            if row.status == OutboxStatus.sent and row.is_collection
        ]

    promised = sent_collection(promised_loan)
    held = [(step, d) for step, d in promised if d <= promised_until and step != "promise_due"]
    assert held == [], f"collection reminders during the promise: {held}"
    assert ("promise_due", date(2026, 12, 5)) in promised
    assert any(d > promised_until for _, d in promised), "collection never resumed"
    assert resolved_at is not None
    during_case = [
        (step, d) for step, d in sent_collection(hardship_loan) if d <= resolved_at.date()
    ]
    assert during_case == [], f"collection reminders during the hardship case: {during_case}"
    assert any(d > resolved_at.date() for _, d in sent_collection(hardship_loan)), (
        "collection never resumed after the case closed"
    )
    # The first morning's reminders, planned before the holds, were stopped at send time.
    first = {
        row.loan_id: row.last_error for row in _rows(session, OutboxMessage.step == "installment+1")
    }
    assert first == {promised_loan.id: "promise_pending", hardship_loan.id: "hardship_case_open"}


# == K-6 audit completeness ===================================================================
AUDITED = {"planned", "sent", "suppressed", "rescheduled"}


async def test_K6_every_send_suppress_and_reschedule_is_audited_with_rule_local_time_counts_and_template_version(  # noqa: E501
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    """K-6 on PostgreSQL: a Nairobi campaign whose messages meet every kind of decision, at
    planning and again at send time: planned and sent; planned after hours and rescheduled;
    suppressed by a cap while planning; opted out, paused by hardship and capped after planning
    (suppressed by the deliverer); come due after hours (rescheduled by the deliverer).

    100 % of the decisions are in the contact ledger, each with the rule that decided
    (``rule``), the borrower's local time of the send (``detail.local_send_at``, in the branch's
    UTC offset), the counts in the cap windows (``detail.counts``: ``day``, ``7d``, ``30d``) and
    the version of the message template used (``detail.template_version``)."""
    from api.borrowers.models import Channel, Consent

    session = bound.session
    br = f.branch(session)
    plain = f.loan(session, f.borrower(session, br), first_due=TODAY + timedelta(days=3))
    evening = f.loan(session, f.borrower(session, br), first_due=TODAY + timedelta(days=1))
    # Three installments paid on time, the last yesterday: a streak note and an early-repayment
    # note fall on the same day, and the day's cap suppresses the second.
    streak = f.loan(session, f.borrower(session, br), first_due=TODAY - timedelta(days=60), paid=3)
    leaving = f.borrower(session, br)
    opted_out = f.loan(session, leaving, first_due=TODAY + timedelta(days=3))
    paused = f.loan(session, f.borrower(session, br), first_due=TODAY + timedelta(days=3))
    late = f.loan(session, f.borrower(session, br), first_due=TODAY + timedelta(days=3))
    session.commit()

    planner = Planner()
    # Monday 30 November, 20:00 in Nairobi: after hours, moved to Tuesday 08:00.
    planner.plan(session, _local(TODAY - timedelta(days=1), 20), write=True, loan_ids=[evening.id])
    planner.plan(session, AT, write=True, loan_ids=[plain.id, streak.id, opted_out.id, paused.id])
    # After planning: the borrower opts out, a hardship case pauses collection, and one more
    # campaign message of the first loan comes due the same day (over the day's cap).
    session.add(
        Consent(borrower_id=leaving.id, channel=Channel.telegram, opted_in=False, opted_out_at=AT)
    )
    paused.collection_paused = True
    chat = _chat_of(session, plain.borrower_id)
    session.add(
        _outbox_row(
            session.get_one(type(leaving), plain.borrower_id),
            plain,
            chat,
            "k6:extra",
            purpose="incentive",
            send_at=AT + timedelta(minutes=5),
        )
    )
    session.commit()
    deliverer = _deliverer(bound.factory, {"telegram": telegram})
    try:
        await _settle(deliverer, session, AT, until=AT + timedelta(hours=1))
        # Planned for 09:30 but the worker only gets to it at 19:30: moved to Wednesday 08:00.
        planner.plan(session, AT, write=True, loan_ids=[late.id])
        session.commit()
        await _settle(deliverer, session, _local(TODAY, 19, 30), until=_local(TODAY, 19, 31))
    finally:
        deliverer.close()

    rows = _rows(session)
    events = [
        e
        for e in session.scalars(select(ContactEvent).order_by(ContactEvent.id))
        if e.direction == "outbound" and e.kind in {"reminder", "incentive"}
    ]
    decisions = Counter((e.decision, e.rule) for e in events if e.decision in AUDITED)
    # Every kind of decision happened (the test covers what it claims).
    for expected in [
        ("planned", "campaign"),
        ("sent", "campaign"),
        ("rescheduled", "quiet_hours"),
        ("suppressed", "cap_day"),
        ("suppressed", "opted_out"),
        ("suppressed", "hardship_case_open"),
    ]:
        assert decisions[expected] >= 1, f"no {expected} decision: {decisions}"
    assert any(
        e.decision == "rescheduled" and e.detail.get("outbox_id") is not None for e in events
    ), "the deliverer rescheduled nothing"
    # 100 % of the decisions are logged: every outbox row has its events.
    for row in rows:
        mine = [
            e
            for e in events
            if e.detail.get("outbox_id") == row.id
            or e.detail.get("business_key") == row.business_key
        ]
        assert mine, f"no ledger event for {row.business_key} ({row.status})"

    missing: Counter[str] = Counter()
    for e in events:
        if e.decision not in AUDITED:
            continue
        who = (
            f"{e.decision}/{e.rule} by the {'deliverer' if 'outbox_id' in e.detail else 'planner'}"
        )
        if not e.rule:
            missing[f"{who}: rule"] += 1
        local = e.detail.get("local_send_at")
        if not local or datetime.fromisoformat(local).utcoffset() != timedelta(hours=3):
            missing[f"{who}: local_send_at"] += 1
        counts = e.detail.get("counts")
        if not isinstance(counts, dict) or not {"day", "7d", "30d"} <= counts.keys():
            missing[f"{who}: counts"] += 1
        if e.detail.get("template_version") is None:
            missing[f"{who}: template_version"] += 1
    assert not missing, "ledger events without:\n" + "\n".join(
        f"{n} x {what}" for what, n in sorted(missing.items())
    )


# == P-5 no third-party disclosure ============================================================
async def test_P5_unverified_channels_get_limited_content_and_no_one_else_hears_of_the_debt(
    bound: Bound,
    fake_tg: tuple[FakeTelegram, ServerThread],
    fake_wa: tuple[FakeWhatsApp, ServerThread],
    telegram: TelegramGateway,
    whatsapp: WhatsAppGateway,
) -> None:
    """P-5 on PostgreSQL, delivered through the real gateways to both fake providers:

    - a borrower reachable only on the WhatsApp number on file (opted in, never verified in
      chat) gets the limited template (no parameters: no amount, account or date);
    - a borrower whose Telegram chat, after the reminder was planned, was verified by someone
      else (a handed-on phone) gets the limited text there;
    - the members of a borrower's solidarity group, all on verified chats, get nothing about
      the member who is overdue.

    Limited content only: the limited message, the complaint line and the opt-out line, no digit,
    no account, no amount; 0 messages to anyone else (guarantors, referees, group members,
    contacts: every request reaches a channel of the loan's own borrower, or carries the limited
    content)."""
    session = bound.session
    br = f.branch(session)
    phone_only = f.borrower(session, br, telegram=False, whatsapp_opt_in=True, locale="sw")
    handed_on = f.borrower(session, br, locale="fr")
    new_holder = f.borrower(session, br, telegram=False)
    umoja = f.group(session, br, weekday=(TODAY.weekday() + 3) % 7)  # no meeting tomorrow
    overdue_member = f.borrower(session, br, group=umoja)
    others = [f.borrower(session, br, group=umoja) for _ in range(3)]
    loans = {
        "phone_only": f.loan(session, phone_only, first_due=TODAY - timedelta(days=1)),
        "handed_on": f.loan(session, handed_on, first_due=TODAY - timedelta(days=3)),
        "member": f.loan(session, overdue_member, first_due=TODAY - timedelta(days=7)),
    }
    for other in others:
        f.loan(session, other, first_due=TODAY + timedelta(days=20))
    session.commit()
    Planner().plan(session, AT, write=True)
    identity = session.scalar(
        select(ChannelIdentity).where(ChannelIdentity.borrower_id == handed_on.id)
    )
    assert identity is not None
    identity.borrower_id = new_holder.id  # verified by someone else since
    session.commit()

    deliverer = _deliverer(bound.factory, {"telegram": telegram, "whatsapp": whatsapp})
    try:
        await _settle(deliverer, session, AT, until=AT + timedelta(hours=1))
    finally:
        deliverer.close()

    rows = {row.loan_id: row for row in _rows(session)}
    assert {loan.id for loan in loans.values()} <= {
        lid for lid, row in rows.items() if row.status == OutboxStatus.sent
    }
    own_chats = {
        borrower_id: chat
        for borrower_id, chat in session.execute(
            select(ChannelIdentity.borrower_id, ChannelIdentity.external_user_id).where(
                ChannelIdentity.verified_at.is_not(None)
            )
        )
    }

    def limited(locale: str) -> str:
        lines = (render(key, locale) for key in (LIMITED_KEY, COMPLAINT_KEY, OPT_OUT_KEY))
        return "\n\n".join(lines)

    # The number on file: the limited template, nothing to fill in.
    [wa] = fake_wa[0].state.query("messages", phone_only.phone_e164.lstrip("+"))
    assert wa["payload"]["type"] == "template"
    assert wa["payload"]["template"]["name"] == "kopa_reminder_limited_v1"
    assert "components" not in wa["payload"]["template"]
    # The handed-on chat: the limited text in the borrower's language, nothing else.
    handed = fake_tg[0].sent_texts(identity.external_user_id)
    assert handed == [limited("fr")]
    assert not re.search(r"\d", handed[0])
    # The group: the overdue member hears of their own installment, the others of nothing.
    member_row = rows[loans["member"].id]
    assert fake_tg[0].sent_texts(own_chats[overdue_member.id]) != []
    for other in others:
        assert fake_tg[0].sent_texts(own_chats[other.id]) == []
    # Every request went to the loan's own borrower's verified chat, or said nothing but the
    # limited text.
    by_chat = {row.recipient: row for row in rows.values()}
    for entry in [*fake_tg[0].state.query("sendMessage", None)]:
        row = by_chat[str(entry["recipient"])]
        own = own_chats.get(row.borrower_id or -1) == row.recipient
        if not own:
            assert entry["payload"]["text"] == limited(row.locale)
    to_others = [t for o in others for t in fake_tg[0].sent_texts(own_chats[o.id])]
    assert member_row.args["account"] not in " ".join(to_others)


# == L-4 claiming from a large backlog ========================================================
@pytest.mark.postgres
def test_L4_the_claim_over_a_large_backlog_uses_the_partial_index_and_stays_fast(
    fresh_pg: str,
) -> None:
    """L-4 on PostgreSQL with 60 000 outbox rows, 6 000 of them due (the row's size, one
    million and 100 000, runs in ``python -m bench.notify``, which exits non-zero when its
    claim misses): the claim statement exactly as ``claim()`` sends it uses the partial index
    on due rows and no sequential scan, both planned with its parameters and as the generic
    plan of a prepared statement (psycopg prepares what a worker runs again and again); and
    the claim of 100 rows takes p95 < 50 ms over 40 claims."""
    from bench.notify.backlog import claim_plans, load_backlog, plan_problems

    now = datetime.now(UTC)
    load_backlog(fresh_pg, 60_000, 6_000, now)
    engine = build_engine(fresh_pg)
    try:
        plans = claim_plans(engine, now=now)
        latencies = []
        factory = sessionmaker(bind=engine)
        for n in range(40):
            with factory() as session, session.begin():
                started = time.perf_counter()
                claimed = claim(session, now=now, worker_id=f"l4-{n}", limit=100, lease_seconds=30)
                latencies.append((time.perf_counter() - started) * 1000)
            assert len(claimed) == 100
    finally:
        engine.dispose()
    assert plan_problems(plans["custom"]) == [], plans["custom"]
    # psycopg prepared the claim; the server kept planning it with its parameters, or its
    # generic plan is as good.
    assert plans["prepared"] == 1
    assert plans["generic_plans"] == 0 or plan_problems(plans["generic"]) == [], plans["generic"]
    latencies.sort()
    assert latencies[int(len(latencies) * 0.95) - 1] < 50.0, latencies


# == L-1, F-3, F-12: real workers against the fake Bot API ====================================
_workers = notifier_workers  # tests/notifier/test_notify_workers.py: config, campaign, processes


def _telegram_config(tmp_path: Path, per_second: float, **defaults: Any) -> Path:
    """The notifier tests' worker config (3 s leases, no closed days) with the production
    Telegram limits (``per_second``, 1/s per chat) and ``defaults`` on top."""
    path = _workers._config(tmp_path, per_second=per_second)
    data = yaml.safe_load(path.read_text())
    data["defaults"].update(defaults)
    path.write_text(yaml.safe_dump(data))
    return path


def _plan_campaign(url: str, config: Path, borrowers: int, extra_loans: int = 0) -> int:
    """``borrowers`` borrowers of a branch where it is about midday, each with an installment
    due in three days; the first ``extra_loans`` of them have two more loans (three reminders
    to one chat). Planned now; returns the rows planned."""
    engine = build_engine(url)
    with Session(engine) as session:
        br = f.branch(session, country="ZZ", timezone=_workers._noon_zone())
        today = datetime.now(UTC).astimezone(ZoneInfo(br.timezone)).date()
        for n in range(borrowers):
            person = f.borrower(session, br)
            for _ in range(3 if n < extra_loans else 1):
                f.loan(session, person, first_due=today + timedelta(days=3))
        session.commit()
        cfg = CampaignConfig.model_validate(yaml.safe_load(config.read_text()))
        inserted = Planner(cfg).plan(session, datetime.now(UTC), write=True).inserted
        session.commit()
    engine.dispose()
    return inserted


def _wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    url: str,
    fake: FakeTelegram,
    workers: Sequence[subprocess.Popen[bytes]],
) -> None:
    """``_wait_until``, saying where the campaign stood when it timed out."""
    try:
        _workers._wait_until(predicate, timeout)
    except AssertionError:
        states = Counter(str(r.status) for r in _workers._rows(url))
        exited = [p.returncode for p in workers if p.poll() is not None]
        raise AssertionError(
            f"timed out: rows {dict(states)}, {len(fake.state.sent)} requests, "
            f"workers exited {exited}"
        ) from None


def _most_in_any_second(stamps: Sequence[float]) -> int:
    stamps = sorted(stamps)
    best, first = 0, 0
    for last, at in enumerate(stamps):
        while at - stamps[first] >= 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


def _ledger(url: str) -> list[ContactEvent]:
    engine = build_engine(url)
    with Session(engine) as session:
        events = list(session.scalars(select(ContactEvent)))
        session.expunge_all()
    engine.dispose()
    return events


@pytest.mark.postgres
@pytest.mark.redis
def test_L1_campaign_by_four_workers_holds_the_rates_with_no_duplicate_and_every_decision_logged(
    fresh_pg: str, redis_url: str, tmp_path: Path
) -> None:
    """L-1 with 200 reminders (the row's 50 000 in 2 hours run in ``python -m bench.notify``)
    by 4 ``kopa notify worker`` processes on PostgreSQL sharing the Redis limiter, at the
    production Telegram limits (25/s overall, 1/s per chat), 20 chats getting three reminders.

    Measured at the fake Bot API: never more than 25 requests in any second, never two to one
    chat within a second; all rows sent or suppressed within 3.6 times the minimum time at that
    rate (2 h for 50 000 at 25/s); 0 duplicates (no chat gets a row twice, no row has two
    ``sent`` events); every decision in the ledger (each row's planning and its send)."""
    config = _telegram_config(tmp_path, per_second=25)
    fake = FakeTelegram()
    with ServerThread(fake.app) as server:
        planned = _plan_campaign(fresh_pg, config, borrowers=160, extra_loans=20)
        assert planned == 200
        workers = _workers._start_workers(fresh_pg, server.url, config, redis_url, count=4)
        try:
            _wait_for(lambda: _workers._open_rows(fresh_pg) == 0, 240, fresh_pg, fake, workers)
            time.sleep(1.0)  # nothing may arrive late
        finally:
            _workers._stop(workers)
        log = [e for e in fake.state.query("sendMessage", None) if e["outcome"] == "ok"]

    stamps = [float(e["at"]) for e in log]
    assert _most_in_any_second(stamps) <= 25
    by_chat: dict[str, list[float]] = defaultdict(list)
    for entry in log:
        by_chat[str(entry["recipient"])].append(float(entry["at"]))
    gaps = sorted(
        (round(b - a, 3), chat)
        for chat, times in by_chat.items()
        for a, b in itertools.pairwise(sorted(times))
    )
    assert max(_most_in_any_second(s) for s in by_chat.values()) == 1, f"closest: {gaps[:5]}"
    assert sorted(len(s) for s in by_chat.values())[-20:] == [3] * 20
    assert max(stamps) - min(stamps) <= 3.6 * planned / 25
    rows = _workers._rows(fresh_pg)
    assert {r.status for r in rows} <= {OutboxStatus.sent, OutboxStatus.suppressed}
    sent = [r for r in rows if r.status == OutboxStatus.sent]
    assert len(log) == len(sent) == planned
    # A Telegram message id is unique within its chat (the fake numbers each chat's from 1).
    assert len({(r.recipient, r.provider_message_id) for r in sent}) == len(sent)
    events = _ledger(fresh_pg)
    sent_events = Counter(e.detail.get("outbox_id") for e in events if e.decision == "sent")
    assert set(sent_events.values()) == {1}
    assert set(sent_events) == {r.id for r in sent}
    planned_keys = {e.detail.get("business_key") for e in events if e.decision == "planned"}
    assert planned_keys == {r.business_key for r in rows}


def _in_flight(url: str) -> int:
    """Rows a worker holds, or that are due and waiting for one."""
    engine = build_engine(url)
    with Session(engine) as session:
        count = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                (OutboxMessage.status.in_(CAMPAIGN_STATES_LEFT_OPEN[2:]))
                | (
                    OutboxMessage.status.in_(CAMPAIGN_STATES_LEFT_OPEN[:2])
                    & (OutboxMessage.send_at <= datetime.now(UTC))
                )
            )
        )
    engine.dispose()
    return int(count or 0)


def _local_clock(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).time().replace(microsecond=0).isoformat()


@pytest.mark.postgres
@pytest.mark.redis
def test_F3_two_of_four_workers_killed_mid_campaign_deliver_at_most_once_and_never_after_hours(
    fresh_pg: str, redis_url: str, tmp_path: Path
) -> None:
    """F-3 with 4 ``kopa notify worker`` processes on PostgreSQL and Redis sending a campaign
    (up to 900 reminders: more than 25/s can send in time) whose send window closes 35 s after
    the workers were started (configured to end the 2-minute clock-skew margin later: the
    notifier stops sending that long before a window's end, row F-13): 2 of them are SIGKILLed
    halfway through the campaign's time and restarted after their 3-second lease (the row's
    "2 minutes" with production's 30-second lease).

    The campaign completes (no row left claimed, ready or sending); every borrower receives at
    most one reminder (measured at the fake Bot API); none arrives after the window closed; the
    rows that did not go in time are rescheduled to the next morning (06:02, the window's start
    and the margin), not dropped."""
    zone = ZoneInfo(_workers._noon_zone())
    closes = datetime.now(UTC) + timedelta(seconds=35)
    config = _telegram_config(
        tmp_path,
        per_second=25,
        quiet_hours={"start": "06:00", "end": _local_clock(closes + CLOCK_SKEW_MARGIN, zone)},
        send_time="06:00",
    )
    fake = FakeTelegram()
    with ServerThread(fake.app) as server:
        workers = _workers._start_workers(fresh_pg, server.url, config, redis_url, count=4)
        try:
            _wait_for(
                lambda: len(_workers._connections_by_worker(fresh_pg)) == 4,
                30,
                fresh_pg,
                fake,
                workers,
            )
            # More than can go before the window closes (about 22/s), whenever that is.
            left = (closes - datetime.now(UTC)).total_seconds()
            assert left > 8, "the workers took too long to start"
            size = min(900, int(left * 22) + 80)
            assert _plan_campaign(fresh_pg, config, borrowers=size) == size

            def sent() -> int:
                return len(fake.state.query("sendMessage", None))

            halfway = closes - timedelta(seconds=left / 2)
            _workers._wait_until(lambda: datetime.now(UTC) >= halfway, 60)
            for proc in workers[:2]:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=5)
            killed_after = sent()
            time.sleep(3.5)  # past their lease
            workers[:2] = _workers._start_workers(fresh_pg, server.url, config, redis_url, count=2)
            _workers._wait_until(lambda: datetime.now(UTC) > closes + timedelta(seconds=1), 60)
            _wait_for(lambda: _in_flight(fresh_pg) == 0, 60, fresh_pg, fake, workers)
            time.sleep(1.0)
        finally:
            _workers._stop(workers)
        log = fake.state.query("sendMessage", None)

    per_chat = Counter(str(e["recipient"]) for e in log)
    assert max(per_chat.values()) == 1
    after_hours = [
        datetime.fromtimestamp(float(e["at"]), UTC).astimezone(zone).time().isoformat()
        for e in log
        if datetime.fromtimestamp(float(e["at"]), UTC) >= closes.replace(microsecond=0)
    ]
    assert after_hours == [], f"sent after the window closed at {_local_clock(closes, zone)}"
    rows = _workers._rows(fresh_pg)
    states = Counter(r.status for r in rows)
    assert set(states) <= {OutboxStatus.sent, OutboxStatus.unknown, OutboxStatus.pending}
    assert states[OutboxStatus.sent] > killed_after > 0  # the campaign went on after the kill
    tomorrow_start = (
        datetime.combine(
            closes.astimezone(zone).date() + timedelta(days=1), clock_time(6), tzinfo=zone
        )
        + CLOCK_SKEW_MARGIN
    )
    late = [r for r in rows if r.status == OutboxStatus.pending]
    assert late, "the window closed before the campaign was done: some rows must wait"
    assert all(r.send_at == tomorrow_start for r in late)
    rescheduled = {
        e.detail.get("outbox_id")
        for e in _ledger(fresh_pg)
        if e.decision == "rescheduled" and e.rule == "quiet_hours"
    }
    assert {r.id for r in late} <= rescheduled
    # Killed between "may leave" and the answer: unknown, never resent, at most their lanes.
    unknown = [r for r in rows if r.status == OutboxStatus.unknown]
    assert all(per_chat[r.recipient] <= 1 for r in unknown)


@pytest.mark.postgres
@pytest.mark.redis
def test_F12_relay_killed_between_publish_and_mark_published_has_the_business_effect_once(
    fresh_pg: str, redis_url: str, tmp_path: Path
) -> None:
    """F-12: the notifier is the outbox's relay; "publish" is the provider accepting the
    message, "mark published" the commit of its outcome. A hardship case is opened twice with
    one idempotency key (the API's own retry: a duplicate publish into the outbox), and the
    ``kopa notify worker`` carrying its officer alert is SIGKILLed the moment the fake Bot API
    has received the request, before it answers; a new worker starts.

    The duplicate enqueue is absorbed (one case, one outbox row: the unique business key);
    the relay that takes over finds the row in flight (committed ``sending`` before the request
    left) and never publishes it again: the officer is alerted once, measured at the fake Bot
    API, the row ends ``unknown`` with its ledger event, and no second ``sent``. (Telegram takes
    no idempotency key, so the dedupe on the consumer's side of the relay is the outbox row.)"""
    config = _telegram_config(tmp_path, per_second=25)
    engine = build_engine(fresh_pg)
    with Session(engine) as session:
        br = f.branch(session, country="ZZ", timezone=_workers._noon_zone())
        officer = _officer(session, br.id, "9000777")
        person = f.borrower(session, br)
        person.officer_id = officer.id
        f.loan(session, person, first_due=date(2029, 1, 1))
        session.commit()
        opened = [
            cases.open_case(
                session=session,
                borrower=person,
                kind=CaseKind.hardship,
                now=datetime.now(UTC),
                channel="telegram",
                idempotency_key="tg:12345:update:9001",
            )
            for _ in range(2)
        ]
        session.commit()
    assert [o.created for o in opened] == [True, False]
    fake = FakeTelegram()
    workers: list[subprocess.Popen[bytes]] = []

    def kill_on_alert(entry: dict[str, Any]) -> None:
        if entry["method"] == "sendMessage" and entry["recipient"] == "9000777" and workers:
            workers[0].send_signal(signal.SIGKILL)

    fake.state.listeners.append(kill_on_alert)
    with ServerThread(fake.app) as server:
        workers += _workers._start_workers(fresh_pg, server.url, config, redis_url, count=1)
        try:
            _wait_for(lambda: workers[0].poll() is not None, 120, fresh_pg, fake, workers)
            fake.state.listeners.clear()
            workers += _workers._start_workers(fresh_pg, server.url, config, redis_url, count=1)
            _wait_for(lambda: _workers._open_rows(fresh_pg) == 0, 180, fresh_pg, fake, workers)
            time.sleep(1.0)  # nothing may arrive late
        finally:
            _workers._stop(workers)
        alerts = fake.state.query("sendMessage", "9000777")

    rows = _workers._rows(fresh_pg)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 1
    engine.dispose()
    [alert] = [r for r in rows if r.purpose == "officer_alert"]
    assert len(alerts) == 1
    assert alert.status == OutboxStatus.unknown
    events = [e for e in _ledger(fresh_pg) if e.detail.get("outbox_id") == alert.id]
    assert [(e.decision, e.rule) for e in events] == [("unknown", "lease_expired")]
