"""The message registry: every sentence a borrower or officer reads, by stable key.

Each area keeps its own module (``conversation``, ``channels``, ``notifier``, ``officer``)
mapping keys to English source strings marked with ``N_`` (or ``NP_`` for plurals) so that
``make locales-update`` extracts them into ``locales/messages.pot``. The translations live in
``locales/<lang>/LC_MESSAGES/messages.po``; :mod:`i18n` is the one place that renders.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Plural:
    singular: str
    plural: str


Message = str | Plural


def N_(source: str) -> str:
    """Mark a source string for extraction; translation happens at render time."""
    return source


def NP_(singular: str, plural: str) -> Plural:
    """Mark a plural source string; the ``count`` argument chooses the form."""
    return Plural(singular, plural)


def load_registry() -> dict[str, Message]:
    """Merge every area's ``MESSAGES``; a key defined twice is a bug."""
    registry: dict[str, Message] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for key, message in getattr(module, "MESSAGES", {}).items():
            if key in registry:
                raise ValueError(f"message key {key!r} defined twice")
            registry[key] = message
    return registry
