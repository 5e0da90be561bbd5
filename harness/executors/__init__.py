"""Where work items run. `local`: the runner's own loop in this process (each candidate loaded once).
`ray`: each item a Ray task (`harness.executors.ray`); the work a task does is in `harness.executors.local`.
Workers never open the store: they return results as plain data and the driver writes them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.models import hash_files
from harness.records import CandidateInfo, ItemResult, TrainingResult

RAY_MISSING = ("executor ray needs Ray, which is not installed: pip install \"harness[ray]\" "
               "(or pip install \"ray==2.60.0\"), or use --executor local")


def require_ray() -> None:
    """A one-line error naming the install command when Ray is not importable."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise HarnessError(RAY_MISSING) from None


@dataclass(frozen=True)
class AdapterFiles:
    """A LoRA adapter folder as bytes (relative path -> content) with the hash `hash_files` gives it."""

    files: dict[str, bytes]
    hash: str

    @classmethod
    def read(cls, folder: Path) -> AdapterFiles:
        paths = sorted(p for p in folder.rglob("*") if p.is_file())
        return cls({str(p.relative_to(folder)): p.read_bytes() for p in paths}, hash_files(paths))

    def write(self, folder: Path) -> Path:
        """The files under `folder` (replaced), checked against the hash; the folder."""
        folder.mkdir(parents=True, exist_ok=True)
        for old in sorted(folder.rglob("*"), reverse=True):
            old.unlink() if old.is_file() else old.rmdir()
        for rel, data in self.files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        got = hash_files(sorted(p for p in folder.rglob("*") if p.is_file()))
        if got != self.hash:
            raise RuntimeError(f"adapter files in {folder} arrived with hash {got}, expected {self.hash}")
        return folder


@dataclass(frozen=True)
class Trained:
    """What a training task returns: the record and the adapter, or why there is none."""

    candidate: str
    suite: str
    training: TrainingResult | None = None
    adapter: AdapterFiles | None = None
    info: CandidateInfo | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Evaluated:
    """What an evaluation task returns: the item's whole result and the candidate's row."""

    item: ItemResult
    info: CandidateInfo | None = None
