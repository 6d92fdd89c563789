"""Jinja2 pages in the reader's language: every word through :func:`i18n.render`.

Templates get ``t(key, **args)`` for text, ``money(amount, currency)``, ``when(moment, tz)`` and
``on(day)`` for Babel's amounts, moments and calendar days in the same locale. Autoescaping is
on for every template, and translated text is escaped like any other value.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

import i18n

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")

_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# The pages load scripts and styles only from the console itself; HTMX's indicator styles are
# turned off in base.html because they would be an inline style.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def page(name: str, *, locale: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render template ``name`` for a reader of ``locale``."""
    language = i18n.normalize_locale(locale)

    def t(key: str, **args: Any) -> str:
        return i18n.render(key, language, **args)

    def money(amount: Decimal, currency: str) -> str:
        return i18n.format_money(amount, currency, language)

    def when(moment: datetime, tz: str | None = None) -> str:
        return i18n.format_moment(moment, language, tz)

    def on(value: date) -> str:
        return i18n.format_day(value, language)

    html = _ENV.get_template(name).render(
        t=t, money=money, when=when, on=on, lang=language, **context
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def request_locale(accept_language: str | None) -> str:
    """The first supported language the browser asks for (before anyone has signed in)."""
    for part in (accept_language or "").split(","):
        language = part.split(";")[0].strip().replace("-", "_").split("_")[0].lower()
        if language in i18n.SUPPORTED_LOCALES:
            return language
    return i18n.DEFAULT_LOCALE
