"""The one rendering helper: message keys and typed arguments in, text in the reader's locale out.

Arguments travel between processes (actions → Rasa → gateway, outbox rows) as JSON, so money and
dates are tagged: ``{"$money": ["1500.00", "KES"]}``, ``{"$date": "2026-12-04"}``,
``{"$datetime": "2026-12-04T09:00:00+03:00"}``, ``{"$number": "3"}``, ``{"$key": "relief.pause"}``
(a nested message). :func:`money`, :func:`day` and friends build them; :func:`render` formats them
with Babel for the locale.
"""

from __future__ import annotations

import gettext
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_skeleton
from babel.numbers import format_currency, format_decimal
from babel.numbers import format_percent as babel_format_percent

from i18n.messages import Message, Plural, load_registry

LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"
SUPPORTED_LOCALES: tuple[str, ...] = ("en", "fr", "es", "sw")
DEFAULT_LOCALE = "en"
# Babel territory used for number and money formats when only a language is known.
_FORMAT_LOCALES = {"en": "en_KE", "fr": "fr_SN", "es": "es_MX", "sw": "sw_KE"}


class CatalogMissing(RuntimeError):
    """A ``.po`` file has no compiled ``.mo``: run ``make locales``."""


def normalize_locale(value: str | None) -> str:
    """Map ``fr-FR``, ``sw_KE``, ``ES`` ... to a supported language, else the default."""
    if not value:
        return DEFAULT_LOCALE
    language = value.replace("-", "_").split("_")[0].lower()
    return language if language in SUPPORTED_LOCALES else DEFAULT_LOCALE


@cache
def _translations(locale: str) -> gettext.NullTranslations:
    po = LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
    mo = po.with_suffix(".mo")
    if po.exists() and not mo.exists():
        raise CatalogMissing(f"{mo} is missing; run `make locales`")
    if not mo.exists():
        return gettext.NullTranslations()
    with mo.open("rb") as handle:
        return gettext.GNUTranslations(handle)


@cache
def _registry() -> dict[str, Message]:
    return load_registry()


def check_catalogs() -> None:
    """Fail fast at start-up when a catalog is not compiled."""
    for locale in SUPPORTED_LOCALES:
        _translations(locale)


def message_keys() -> list[str]:
    return sorted(_registry())


@lru_cache(maxsize=64)
def babel_locale(locale: str) -> Locale:
    # Cached: parsing a locale costs more than formatting with it, and campaigns format a lot.
    language = normalize_locale(locale)
    try:
        return Locale.parse(_FORMAT_LOCALES.get(language, language))
    except UnknownLocaleError:  # pragma: no cover - every supported language is known
        return Locale.parse(language)


# Cached: a campaign formats the same few due dates and amounts for thousands of borrowers,
# and Babel takes tens of microseconds a call.
@lru_cache(maxsize=4096)
def format_money(amount: Decimal | str, currency: str, locale: str) -> str:
    value = Decimal(str(amount))
    return format_currency(value, currency, locale=babel_locale(locale))


@lru_cache(maxsize=4096)
def format_day(value: date, locale: str) -> str:
    """A calendar date in words, e.g. "Friday 4 December 2026" / "vendredi 4 décembre 2026"."""
    return format_date(value, format="full", locale=babel_locale(locale))


def format_percent(rate: Decimal, locale: str) -> str:
    """A fraction as a percentage with all its decimals, e.g. "12.34%" / "12,34 %"."""
    return babel_format_percent(rate, locale=babel_locale(locale), decimal_quantization=False)


def format_month(value: date, locale: str) -> str:
    """The month of ``value`` in a word and a year, e.g. "Nov 2026" / "nov. 2026"."""
    return format_skeleton("yMMM", value, locale=babel_locale(locale))


def format_moment(value: datetime, locale: str, tz: str | None = None) -> str:
    tzinfo = ZoneInfo(tz) if tz else value.tzinfo
    return format_datetime(value, format="medium", tzinfo=tzinfo, locale=babel_locale(locale))


# Builders of tagged arguments (JSON-safe).
def money(amount: Decimal | str, currency: str) -> dict[str, list[str]]:
    return {"$money": [str(Decimal(str(amount)).quantize(Decimal("0.01"))), currency]}


def day(value: date) -> dict[str, str]:
    return {"$date": value.isoformat()}


def moment(value: datetime, tz: str | None = None) -> dict[str, str]:
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    tagged = {"$datetime": value.isoformat()}
    if tz:
        tagged["tz"] = tz
    return tagged


def number(value: int | Decimal | str) -> dict[str, str]:
    return {"$number": str(value)}


def nested(key: str, **args: Any) -> dict[str, Any]:
    return {"$key": key, "args": args}


def format_arg(value: Any, locale: str) -> Any:
    """One argument as the reader of ``locale`` should see it (tagged money, dates, numbers)."""
    if isinstance(value, Mapping):
        if "$money" in value:
            amount, currency = value["$money"]
            return format_money(amount, currency, locale)
        if "$date" in value:
            return format_day(date.fromisoformat(value["$date"]), locale)
        if "$datetime" in value:
            return format_moment(
                datetime.fromisoformat(value["$datetime"]), locale, value.get("tz")
            )
        if "$number" in value:
            return format_decimal(Decimal(value["$number"]), locale=babel_locale(locale))
        if "$key" in value:
            return render(value["$key"], locale, **value.get("args", {}))
    if isinstance(value, Decimal):
        return format_decimal(value, locale=babel_locale(locale))
    if isinstance(value, date):
        return format_day(value, locale)
    return value


# Counts whose plural forms stand for every form of the supported languages (and more).
_PLURAL_PROBES = (0, 1, 2, 3, 5, 11, 21, 101)


def template_strings(key: str, locale: str | None) -> tuple[str, ...]:
    """The unformatted text of ``key``: its English source and what ``locale`` reads (every
    plural form). What a message's template version is made of: change a word of either and
    the version changes.

    Raises:
        KeyError: the key is not in the registry.
    """
    language = normalize_locale(locale)
    message = _registry()[key]
    translations = _translations(language)
    if isinstance(message, Plural):
        forms = [translations.ngettext(message.singular, message.plural, n) for n in _PLURAL_PROBES]
        return (message.singular, message.plural, *dict.fromkeys(forms))
    return (message, translations.gettext(message))


def render(key: str, locale: str | None, **args: Any) -> str:
    """Translate ``key`` for ``locale`` and fill its named placeholders.

    Raises:
        KeyError: the key is not in the registry (a bug, caught by the catalog tests).
    """
    language = normalize_locale(locale)
    message = _registry()[key]
    translations = _translations(language)
    if isinstance(message, Plural):
        count = int(args.get("count", 1))
        template = translations.ngettext(message.singular, message.plural, count)
    else:
        template = translations.gettext(message)
    formatted = {name: format_arg(value, language) for name, value in args.items()}
    return template.format(**formatted)
