"""The frozen evaluation material is unchanged: every file matches its recorded SHA-256.

The conversation scripts (``tests/conversation/scripts``) and the held-out NLU split
(``nlu/tests/heldout``) were written blind to the dialogue and the training data; their READMEs
say how a plainly wrong fact may be corrected (with the reason, and the sums updated in the same
commit). Each ``SHA256SUMS*`` file lists files of its own folder, as ``sha256sum`` writes them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kopa.paths import ROOT

FROZEN = (ROOT / "tests" / "conversation" / "scripts", ROOT / "nlu" / "tests" / "heldout")
UNFROZEN = {"README.md"}  # the folders' descriptions, not material


def recorded(folder: Path) -> dict[str, str]:
    """Every file named in the folder's ``SHA256SUMS*`` files, with its recorded sum."""
    sums: dict[str, str] = {}
    files = sorted(folder.glob("SHA256SUMS*"))
    assert files, f"{folder} has no SHA256SUMS file"
    for sums_file in files:
        for line in sums_file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            digest, name = line.split(maxsplit=1)
            name = name.lstrip("*")
            assert name not in sums, f"{name} is listed twice ({sums_file.name})"
            sums[name] = digest.lower()
    return sums


@pytest.mark.parametrize("folder", FROZEN, ids=lambda p: str(p.relative_to(ROOT)))
def test_frozen_files_match_their_recorded_sums(folder: Path) -> None:
    sums = recorded(folder)
    present = {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not path.name.startswith("SHA256SUMS") and path.name not in UNFROZEN
    }
    assert not present - set(sums), f"files without a recorded sum: {sorted(present - set(sums))}"
    assert not set(sums) - present, f"recorded files missing: {sorted(set(sums) - present)}"
    changed = [
        name
        for name, digest in sorted(sums.items())
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest
    ]
    assert not changed, f"frozen files changed: {changed}"
