"""What reproduces a run: package versions, git commit and dirty flag, the command line."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path

PACKAGES = ("harness", "torch", "transformers", "peft", "lm_eval", "duckdb", "sacrebleu", "rouge_score",
            "scikit-learn", "numpy")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def versions_json() -> str:
    return json.dumps(versions(), sort_keys=True)


def git_state(folder: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the repository holding `folder`, or (None, None) outside one."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True,
                                timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())
