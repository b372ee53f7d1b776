"""Fill a ComfyUI models directory from the model manifest, downloading only what is missing.

Pure logic with the Hugging Face client injected, so that `backend/modal_app.py`'s
`download_models` (on a Modal Volume) and tests (with a fake hub) share it.

A file counts as present when it exists at `<models_dir>/<folder>/<local_name>` with
exactly the manifest's size. Anything else is fetched into a staging folder on the same
filesystem, its size checked, and only then moved into place, so that an interrupted or
wrong download never leaves a file ComfyUI would try to load.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

# Staging folder inside models_dir: same filesystem, so the final move is an atomic
# rename; dot-prefixed so ComfyUI's folder scans never list half-downloaded files.
STAGING_DIRNAME = ".ryla-download"


class ManifestEntry(Protocol):
    """What is read from a `workflows.manifest.ModelFile`."""

    @property
    def repo_id(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def folder(self) -> str: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def gated(self) -> bool: ...
    @property
    def pipelines(self) -> tuple[str, ...]: ...
    @property
    def local_name(self) -> str: ...


class HubDownload(Protocol):
    """`huggingface_hub.hf_hub_download`'s shape, as far as it is used here."""

    def __call__(self, *, repo_id: str, filename: str, local_dir: str,
                 token: str | None) -> str: ...


@dataclass(frozen=True)
class FileOutcome:
    path: str  # "<folder>/<local_name>", as ComfyUI and GET /models name it
    repo_id: str
    filename: str
    size_bytes: int
    reason: str = ""


@dataclass
class DownloadReport:
    downloaded: list[FileOutcome] = field(default_factory=list)
    present: list[FileOutcome] = field(default_factory=list)  # right size, left alone
    failed: list[FileOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def bytes_downloaded(self) -> int:
        return sum(f.size_bytes for f in self.downloaded)

    def summary(self) -> str:
        lines = [
            f"downloaded {len(self.downloaded)} file(s), {self.bytes_downloaded / 1e9:.2f} GB; "
            f"{len(self.present)} already present; {len(self.failed)} failed"
        ]
        lines += [f"  downloaded  {f.path}" for f in self.downloaded]
        lines += [f"  present     {f.path}" for f in self.present]
        lines += [f"  FAILED      {f.path}: {f.reason}" for f in self.failed]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "bytes_downloaded": self.bytes_downloaded,
            "downloaded": [f.path for f in self.downloaded],
            "present": [f.path for f in self.present],
            "failed": {f.path: f.reason for f in self.failed},
        }


def target_path(models_dir: Path, entry: ManifestEntry) -> Path:
    return Path(models_dir) / entry.folder / entry.local_name


def _default_hub_download() -> HubDownload:
    # Imported lazily: the backend itself never needs huggingface_hub at import time.
    from huggingface_hub import hf_hub_download

    return hf_hub_download  # type: ignore[return-value]


def select(manifest: Iterable[ManifestEntry], pipelines: Sequence[str] = ()) -> list[ManifestEntry]:
    """The entries needed by any of `pipelines`; all of them when none are named."""
    entries = list(manifest)
    if not pipelines:
        return entries
    known = {p for e in entries for p in e.pipelines}
    unknown = sorted(set(pipelines) - known)
    if unknown:
        raise ValueError(f"unknown pipeline(s) {unknown}; known: {sorted(known)}")
    return [e for e in entries if set(e.pipelines) & set(pipelines)]


def download_missing(
    manifest: Iterable[ManifestEntry],
    models_dir: Path,
    hub_download: HubDownload | None = None,
    token: str | None = None,
    *,
    log: Callable[[str], None] = print,
) -> DownloadReport:
    """Download every manifest file that is not present with its exact size.

    Failures (hub errors, a gated file without a token, a file of the wrong size) are
    recorded per file and the rest carry on; `report.ok` says whether all succeeded.
    """
    hub = hub_download if hub_download is not None else _default_hub_download()
    models_dir = Path(models_dir)
    staging_root = models_dir / STAGING_DIRNAME
    report = DownloadReport()

    for entry in manifest:
        dest = target_path(models_dir, entry)
        outcome = FileOutcome(
            path=f"{entry.folder}/{entry.local_name}", repo_id=entry.repo_id,
            filename=entry.filename, size_bytes=entry.size_bytes,
        )
        if dest.is_file() and dest.stat().st_size == entry.size_bytes:
            report.present.append(outcome)
            continue
        if entry.gated and not token:
            report.failed.append(_with_reason(
                outcome, f"gated on Hugging Face: set HF_TOKEN (licence of {entry.repo_id} accepted)"))
            log(f"skip {outcome.path}: gated and no HF token")
            continue
        if dest.exists():
            log(f"{outcome.path}: present with {dest.stat().st_size} bytes, expected "
                f"{entry.size_bytes}; downloading again")

        staging = staging_root / f"{entry.folder}__{entry.local_name.replace('/', '__')}"
        log(f"downloading {entry.repo_id}/{entry.filename} -> {outcome.path}")
        try:
            fetched = Path(hub(repo_id=entry.repo_id, filename=entry.filename,
                               local_dir=str(staging), token=token))
            got = fetched.stat().st_size if fetched.is_file() else None
            if got != entry.size_bytes:
                report.failed.append(_with_reason(
                    outcome, f"size {got} bytes, manifest says {entry.size_bytes}; not installed"))
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(fetched, dest)
            report.downloaded.append(outcome)
        except Exception as exc:  # a hub or disk error fails this file, not the whole run
            report.failed.append(_with_reason(outcome, f"{type(exc).__name__}: {exc}"))
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    if staging_root.is_dir() and not any(staging_root.iterdir()):
        staging_root.rmdir()
    return report


def _with_reason(outcome: FileOutcome, reason: str) -> FileOutcome:
    return FileOutcome(outcome.path, outcome.repo_id, outcome.filename, outcome.size_bytes, reason)
