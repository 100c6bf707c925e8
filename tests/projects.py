"""Scratch copies of the Kedro project, so whole-project runs write their outputs there."""

from __future__ import annotations

import shutil
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def make_project(root: Path, raw: Path | None = PROJECT / "data" / "01_raw") -> Path:
    """``root`` with the project's conf, .telemetry and raw data from ``raw`` (None: none).

    ``conf/local/credentials.yml`` gets anonymous GCS credentials, as the emulator wants.
    """
    shutil.copy(PROJECT / "pyproject.toml", root)
    shutil.copy(PROJECT / ".telemetry", root)  # the project's choice: no usage data sent
    shutil.copytree(PROJECT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "conf" / "local" / "credentials.yml").write_text("gcs:\n  token: anon\n")
    (root / "src").mkdir()  # the package itself is installed; Kedro wants the folder
    if raw is not None:
        shutil.copytree(raw, root / "data" / "01_raw")
    return root
