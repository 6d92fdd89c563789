"""Process-wide tuning shared by the long-running processes that must keep time."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Keep the cyclic garbage collector from stalling a process that must keep time.

    A full collection walks every object of the process (SQLAlchemy's metadata, Babel's locale
    data, PTB, a fake provider's request log): 0.1 s or more in which a notifier worker sends
    nothing and loses its booked slots, or a fake provider answers nothing and then counts a
    burst against its rate limit. Objects alive at start-up are moved out of the collector's
    sight, and full collections come less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
