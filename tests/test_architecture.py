"""Every import points down: the import-linter contracts in ``pyproject.toml`` hold.

``kopa`` (the command) may import everything; ``notifier`` sits above ``bot`` (it sends
through the gateway's channel adapters, and nothing in ``bot`` imports it); ``bot`` (gateway),
``portfolio`` (seed and importer) and ``actions`` sit above ``api``; ``i18n`` imports nothing of
ours, and the action server only ``i18n``. ``docs/architecture.md`` draws the picture.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kopa.paths import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
