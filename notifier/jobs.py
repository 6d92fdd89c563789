"""What a delivery pass carries from part to part: a job per row, and the pass's counts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bot.channels.base import OutboundMessage, SendResult
from notifier.rules import Decision


@dataclass
class DeliveryStats:
    claimed: int = 0
    sent: int = 0
    suppressed: int = 0
    rescheduled: int = 0
    retried: int = 0
    rate_limited: int = 0
    dead: int = 0
    failed: int = 0
    unknown: int = 0
    deferred: int = 0
    reclaimed: int = 0
    lost_lease: int = 0
    # Sends that woke too late for their slot (a slow mark, a busy machine), given a later one.
    moved: int = 0
    # Sends that found no later slot either and went back to the queue.
    late: int = 0
    # Rows judged again after waiting longer than REJUDGE_AFTER for a slot.
    rejudged: int = 0
    # channel_error outcomes: the channel's campaign was halted (nobody opted out).
    halted: int = 0
    # One recipient's limit (WhatsApp 131056): that recipient backs off, the others go on.
    recipient_limited: int = 0
    # Sends held back at their slot because their send window was about to end (F-3).
    window_closed: int = 0

    def add(self, other: DeliveryStats) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class Job:
    """One row of a pass, from its verdict to its outcome."""

    id: int
    channel: str
    recipient: str
    outbound: OutboundMessage
    decision: Decision
    slot: float = 0.0  # loop time of its booked slot
    result: SendResult | None = None
    marked: bool = False  # committed ``sending``: its request may leave
    lost: bool = False  # another worker took the row over (lease expired)
    # For the ledger (rule C-10): the borrower's zone, the attempts in the cap windows when it
    # was judged, and the version of the text or template it goes with.
    tz: str = "UTC"
    counts: dict[str, int] | None = None
    template_version: str | None = None
    # When its send window stops allowing it (POSIX seconds; a campaign message), and whether
    # it was held back at its slot because that time had come (row F-3).
    closes: float = math.inf
    closed: bool = False
    # A per-recipient limit's wait (WhatsApp 131056), applied when the chat's hold is released.
    back_off: float = 0.0
