"""The notifier's statements on the outbox: claims and leases, marks, sends recorded in bulk,
halts and dead letters.

Every statement that changes a claimed row names the worker that holds it and the states it left
the row in, so a statement retried after a lost connection, or run after another worker took the
row over (its lease expired), changes nothing it should not. Nothing here commits: the callers
own their transactions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, String, Update, case, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from api.core.db import by_id, in_ids
from api.ledger import service as ledger
from api.outbox.models import DeadLetter, DeadLetterReason, OutboxMessage, OutboxStatus

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Database work cut off by a lost connection is tried again after these waits (doubling).
DB_RETRY_FIRST = 0.05
DB_RETRY_MAX = 1.0
# Claimed or judged by a pass, nothing of them sent yet.
HELD_BY_A_PASS = (OutboxStatus.claimed, OutboxStatus.ready)
# What the ledger event of a decision about an outbox row needs of it (outcomes.Outcomes.event).
EVENT_COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.purpose,
    OutboxMessage.step,
    OutboxMessage.attempts,
    OutboxMessage.borrower_id,
    OutboxMessage.loan_id,
    OutboxMessage.case_id,
    OutboxMessage.channel,
    OutboxMessage.message_key,
)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def reconnecting(attempt: Callable[[bool], T], patience: float) -> T:
    """Run ``attempt(again)`` until it gets through a lost or refused database connection (a
    restarted server, a terminated backend), waiting DB_RETRY_FIRST, then twice as long each
    time up to DB_RETRY_MAX, for ``patience`` seconds at most. SQLAlchemy invalidates the pool's
    connections on the first disconnect it sees, so the next try connects afresh; ``again``
    tells a retry from the first try."""
    deadline = time.monotonic() + patience
    delay = DB_RETRY_FIRST
    again = False
    while True:
        try:
            return attempt(again)
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning(
                "database connection lost (%s); trying again in %.2f s", type(exc).__name__, delay
            )
            time.sleep(delay)
            delay = min(DB_RETRY_MAX, 2 * delay)
            again = True


def recover_expired(session: Session, now: datetime) -> tuple[int, int]:
    """Release claims whose worker vanished: ``claimed`` and ``ready`` back to pending, ``sending``
    to unknown.

    Returns:
        (reclaimed, unknown) counts.
    """
    reclaimed = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status.in_(HELD_BY_A_PASS), OutboxMessage.lease_until < now)
        .values(status=OutboxStatus.pending, claimed_by=None, lease_until=None)
        .returning(OutboxMessage.id)
    ).all()
    lost = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.sending, OutboxMessage.lease_until < now)
        .values(status=OutboxStatus.unknown, last_error="lease expired while sending")
        .returning(
            OutboxMessage.id,
            OutboxMessage.borrower_id,
            OutboxMessage.loan_id,
            OutboxMessage.channel,
            OutboxMessage.purpose,
            OutboxMessage.message_key,
        )
    ).all()
    for row in lost:
        ledger.record(
            session=session,
            at=now,
            direction="outbound",
            kind=row.purpose,
            decision="unknown",
            rule="lease_expired",
            borrower_id=row.borrower_id,
            loan_id=row.loan_id,
            channel=row.channel,
            message_key=row.message_key,
            detail={"outbox_id": row.id},
        )
    return len(reclaimed), len(lost)


def _open_halts() -> Select[str]:
    return select(DeadLetter.channel).where(
        DeadLetter.halts_channel.is_(True), DeadLetter.resolved_at.is_(None)
    )


def halted_channels(session: Session) -> set[str]:
    """The channels whose campaign is stopped by an open dead letter (a ``channel_error``)."""
    return set(session.scalars(_open_halts()))


def resume_channel(session: Session, channel: str, *, at: datetime, by: str) -> int:
    """Resolve the open halts of ``channel``: its waiting messages are claimed again.

    Returns:
        How many halts were resolved.
    """
    resolved = session.execute(
        update(DeadLetter)
        .where(
            DeadLetter.channel == channel,
            DeadLetter.halts_channel.is_(True),
            DeadLetter.resolved_at.is_(None),
        )
        .values(resolved_at=at, resolved_by=by)
        .returning(DeadLetter.id)
        .execution_options(synchronize_session=False)
    ).all()
    return len(resolved)


def add_dead_letter(
    session: Session,
    row: OutboxMessage,
    *,
    at: datetime,
    reason: DeadLetterReason,
    error: str | None,
    worker_id: str,
) -> None:
    """A dead letter for ``row``; a ``channel_error`` one halts the row's channel (one open halt
    per channel: the sends refused with it add nothing)."""
    halts = reason == DeadLetterReason.channel_error
    if halts and row.channel in halted_channels(session):
        return
    session.add(
        DeadLetter(
            at=at,
            channel=row.channel,
            reason=reason,
            error=(error or "")[:200],
            outbox_id=row.id,
            halts_channel=halts,
            worker=worker_id,
        )
    )
    if halts:
        session.flush()


def claim(
    session: Session,
    *,
    now: datetime,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    status: OutboxStatus = OutboxStatus.claimed,
) -> list[tuple[int, str, str]]:
    """Claim up to ``limit`` due rows for ``worker_id``, oldest first, setting ``status``.

    Returns:
        (id, channel, recipient) of each claimed row, in id order.
    """
    lease = now + timedelta(seconds=lease_seconds)
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status.in_([OutboxStatus.pending, OutboxStatus.retry]),
            OutboxMessage.send_at <= now,
            # A halted channel's messages wait for an operator (see halted_channels).
            OutboxMessage.channel.not_in(_open_halts()),
        )
        .order_by(OutboxMessage.send_at)
        .limit(limit)
    )
    if is_postgres(session):
        due = due.with_for_update(skip_locked=True)
    rows = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(status=status, claimed_by=worker_id, lease_until=lease)
        .returning(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.recipient)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted((int(r[0]), str(r[1]), str(r[2])) for r in rows)


def held_by(session: Session, ids: Sequence[int], worker_id: str, *also: OutboxStatus) -> Update:
    """An update of those of ``ids`` ``worker_id`` holds and that have not left (or are in one
    of the states ``also``)."""
    return update(OutboxMessage).where(
        in_ids(OutboxMessage.id, list(ids), session),
        OutboxMessage.claimed_by == worker_id,
        OutboxMessage.status.in_([*HELD_BY_A_PASS, *also]),
    )


def renew(session: Session, ids: Sequence[int], worker_id: str, until: datetime) -> None:
    """Extend the lease of the rows of ``ids`` that ``worker_id`` still holds."""
    session.execute(
        held_by(session, ids, worker_id)
        .values(lease_until=until)
        .execution_options(synchronize_session=False)
    )


def release(
    session: Session, ids: Sequence[int], worker_id: str, send_at: datetime, error: str | None
) -> None:
    """Give claimed or judged rows back to the queue; nothing of them has left."""
    if not ids:
        return
    values: dict[str, Any] = {
        "status": OutboxStatus.pending,
        "send_at": send_at,
        "claimed_by": None,
        "lease_until": None,
    }
    if error is not None:
        values["last_error"] = error
    session.execute(
        held_by(session, ids, worker_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def return_unsent(session: Session, ids: Sequence[int], worker_id: str, send_at: datetime) -> int:
    """Give back rows marked ``sending`` (or still ``ready``) whose requests never left: not an
    attempt on the borrower after all.

    Returns:
        How many this worker still held.
    """
    released = session.execute(
        held_by(session, ids, worker_id, OutboxStatus.sending)
        .values(
            status=OutboxStatus.pending,
            send_at=send_at,
            attempts=OutboxMessage.attempts
            - case((OutboxMessage.status == OutboxStatus.sending, 1), else_=0),
            claimed_by=None,
            lease_until=None,
        )
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    ).all()
    return len(released)


def mark_sending(
    session: Session,
    ids: Sequence[int],
    worker_id: str,
    *,
    lease_until: datetime,
    again: bool,
) -> set[int]:
    """Mark the ``ready`` rows of ``ids`` ``sending``, counting their attempt.

    ``again``: the connection was lost, maybe after an earlier try committed: rows it marked are
    marked already, and their attempt counted once.

    Returns:
        The ids marked (those ``worker_id`` still held).
    """
    mine = [in_ids(OutboxMessage.id, list(ids), session), OutboxMessage.claimed_by == worker_id]
    if not again:
        statement = update(OutboxMessage).where(*mine, OutboxMessage.status == OutboxStatus.ready)
        attempts: Any = OutboxMessage.attempts + 1
    else:
        statement = update(OutboxMessage).where(
            *mine, OutboxMessage.status.in_([OutboxStatus.ready, OutboxStatus.sending])
        )
        attempts = OutboxMessage.attempts + case(
            (OutboxMessage.status == OutboxStatus.ready, 1), else_=0
        )
    marked = session.scalars(
        statement.values(status=OutboxStatus.sending, attempts=attempts, lease_until=lease_until)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    return set(marked)


def mark_sent(
    session: Session, provider_ids: Mapping[int, str | None], worker_id: str, at: datetime
) -> Sequence[Any]:
    """Mark the rows of ``provider_ids`` (outbox id -> the provider's message id) sent.

    Returns:
        The :data:`EVENT_COLUMNS` of the rows ``worker_id`` still held ``sending``.
    """
    return session.execute(
        update(OutboxMessage)
        .where(
            in_ids(OutboxMessage.id, list(provider_ids), session),
            OutboxMessage.claimed_by == worker_id,
            OutboxMessage.status == OutboxStatus.sending,
        )
        .values(
            status=OutboxStatus.sent,
            sent_at=at,
            provider_message_id=by_id(OutboxMessage.id, provider_ids, String(), session),
            last_error=None,
            lease_until=None,
        )
        .returning(*EVENT_COLUMNS)
        .execution_options(synchronize_session=False)
    ).all()


def held_for_outcome(session: Session, outbox_id: int, worker_id: str) -> OutboxMessage | None:
    """Lock and load a row whose outcome ``worker_id`` is about to record; ``None`` when another
    worker has taken it over (its lease expired) or it is no longer in a state this pass left."""
    row = session.get(OutboxMessage, outbox_id, with_for_update=True)
    if (
        row is None
        or row.claimed_by != worker_id
        or row.status not in (OutboxStatus.ready, OutboxStatus.sending)
    ):
        return None
    return row
