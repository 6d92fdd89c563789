"""`make demo` prints borrowers to try in several languages and today's reminder plan."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from kopa.cli import app


def test_demo_prints_borrowers_and_the_days_plan(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = CliRunner().invoke(app, ["demo", "--database-url", url, "--no-serve"])
    assert result.exit_code == 0, result.output
    for phone in ("+254700000001", "+221770000001", "+525500000001"):
        assert phone in result.output
    assert "(sw)" in result.output and "(fr)" in result.output and "(es)" in result.output
    assert "Plan at" in result.output and "candidates" in result.output
    # Running it again on the same database works (the demo seeds idempotently).
    again = CliRunner().invoke(app, ["demo", "--database-url", url, "--no-serve"])
    assert again.exit_code == 0, again.output
