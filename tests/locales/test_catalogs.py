"""The catalogs are complete, current, and every message renders in every language."""

from __future__ import annotations

import string
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import i18n
from i18n.messages import Plural, load_registry

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [loc for loc in i18n.SUPPORTED_LOCALES if loc != "en"]


def _catalog(locale: str):  # type: ignore[no-untyped-def]
    with (ROOT / "locales" / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _message_ids(catalog) -> set[str | tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {m.id for m in catalog if m.id}


def test_pot_is_up_to_date(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "pybabel"),
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "N_",
            "-k",
            "NP_:1,2",
            "--no-location",
            "--omit-header",
            "--sort-output",
            "-o",
            str(fresh),
            "i18n/messages",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with fresh.open("rb") as handle:
        expected = _message_ids(read_po(handle))
    with (ROOT / "locales" / "messages.pot").open("rb") as handle:
        committed = _message_ids(read_po(handle))
    assert committed == expected, "locales/messages.pot is stale: run `make locales-update`"


@pytest.mark.parametrize("locale", i18n.SUPPORTED_LOCALES)
def test_every_po_has_every_message(locale: str) -> None:
    with (ROOT / "locales" / "messages.pot").open("rb") as handle:
        template_ids = _message_ids(read_po(handle))
    assert _message_ids(_catalog(locale)) >= template_ids, f"{locale}: run `make locales-update`"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_message_is_translated(locale: str) -> None:
    catalog = _catalog(locale)
    missing = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if (
            message.fuzzy
            or not all(strings)
            or len(strings) < (catalog.num_plurals if message.pluralizable else 1)
        ):
            missing.append(message.id)
    assert not missing, f"{locale} lacks translations for: {missing}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translations_keep_the_placeholders(locale: str) -> None:
    catalog = _catalog(locale)
    wrong = []
    for message in catalog:
        if not message.id:
            continue
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        expected = set().union(*(_placeholders(s) for s in sources))
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for translated in strings:
            # A plural form may drop {count} ("one" needs no number) but never invent names.
            if translated and not _placeholders(translated) <= expected:
                wrong.append((message.id, translated))
            elif translated and not message.pluralizable and _placeholders(translated) != expected:
                wrong.append((message.id, translated))
    assert not wrong, f"{locale}: placeholders differ: {wrong}"


def _sample_args(message: str | Plural) -> dict[str, object]:
    sources = (message.singular, message.plural) if isinstance(message, Plural) else (message,)
    names = set().union(*(_placeholders(s) for s in sources))
    return {name: 2 if name == "count" else f"<{name}>" for name in names}


@pytest.mark.parametrize("locale", i18n.SUPPORTED_LOCALES)
def test_every_key_renders(locale: str) -> None:
    for key, message in load_registry().items():
        text = i18n.render(key, locale, **_sample_args(message))
        assert text.strip(), key
        assert "{" not in text.replace("{{", ""), f"{locale}/{key} left a placeholder: {text}"


def test_money_and_dates_follow_the_readers_locale() -> None:
    from datetime import date
    from decimal import Decimal

    assert i18n.format_money(Decimal("1500"), "KES", "en") == "Ksh1,500.00"
    assert i18n.format_money(Decimal("1500"), "KES", "sw") == "Ksh\xa01,500.00"
    # The CFA franc has no minor unit; French groups thousands with a narrow space.
    assert i18n.format_money(Decimal("1500"), "XOF", "fr") == "1\u202f500\xa0F\u202fCFA"
    assert i18n.format_money(Decimal("1500"), "MXN", "es") == "$1,500.00"
    assert i18n.format_day(date(2026, 12, 4), "fr") == "vendredi 4 décembre 2026"
    assert i18n.format_day(date(2026, 12, 4), "es").startswith("viernes, 4 de diciembre")
    assert "Ijumaa" in i18n.format_day(date(2026, 12, 4), "sw")


def test_unknown_locales_fall_back_to_english() -> None:
    assert i18n.normalize_locale("fr-CA") == "fr"
    assert i18n.normalize_locale("de") == "en"
    assert i18n.normalize_locale(None) == "en"
