"""The results store: one JSON record per file, written atomically, safe under concurrent writers.

Layout: ``<root>/<task>/<dataset>/<key>.json`` (see ``records`` for the schema).
Write contract: the record is validated, then written to a temporary file in the
same folder, fsynced and renamed over the target (``place_bench.io``) while a
per-key lock (``<root>/.locks/<key>.lock``, ``filelock``) is held. Readers thus
see the previous complete record or the new one, never part of one; two writers
of different keys never wait on each other; two writers of one key serialize and
the last complete write wins. A writer killed mid-write can leave a hidden
``.<key>.json.*.tmp`` file behind; readers skip every dot-file.

Read contract: ``iter_records`` never raises for a bad file; it skips it and
reports ``Problem(path, reason)`` (into the list passed as ``problems``, else as
a warning).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping, NamedTuple

from filelock import FileLock

from place_bench.io import atomic_write_text
from place_bench.results.records import RecordError, validate_record

ENV_RESULTS_DIR = "PLACE_BENCH_RESULTS"
_KEY = re.compile(r"^[0-9a-f]{64}$")


class Problem(NamedTuple):
    """A record file that could not be read: where, and why."""

    path: Path
    reason: str


def default_results_dir() -> Path:
    """``$PLACE_BENCH_RESULTS`` if set; else ``registry/results`` of the source checkout.

    The checkout is the folder above the ``place_bench`` package when it holds
    ``pyproject.toml`` and ``registry/`` (an editable install or a clone). For a
    non-editable install there is no checkout, so it is ``./registry/results``
    under the current working directory.
    """
    env = os.environ.get(ENV_RESULTS_DIR)
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and (repo / "registry").is_dir():
        return repo / "registry" / "results"
    return Path.cwd() / "registry" / "results"


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"a record key is 64 lowercase hex digits, got {key!r}")
    return key


class ResultsStore:
    """Records under ``root`` (default: ``default_results_dir()``)."""

    def __init__(self, root: str | os.PathLike | None = None, lock_timeout: float = 60.0):
        self.root = Path(root) if root is not None else default_results_dir()
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r})"

    def path_for(self, record: Mapping[str, Any]) -> Path:
        return self.root / record["task"] / record["dataset"] / f"{_check_key(record['key'])}.json"

    def _lock(self, key: str) -> FileLock:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        return FileLock(locks / f"{key}.lock", timeout=self.lock_timeout)

    def write(self, record: Mapping[str, Any]) -> Path:
        """Validate ``record`` and write it atomically; return its path (replacing any record of that key)."""
        validate_record(record)
        path = self.path_for(record)
        text = json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n"
        with self._lock(record["key"]):
            atomic_write_text(path, text)
        return path

    def find(self, key: str) -> Path | None:
        """The file of ``key``, or None."""
        hits = sorted(self.root.glob(f"*/*/{_check_key(key)}.json"))
        return hits[0] if hits else None

    def has(self, key: str) -> bool:
        return self.find(key) is not None

    def get(self, key: str) -> dict[str, Any]:
        """The record of ``key``; ``KeyError`` when absent, ``RecordError`` when unreadable."""
        path = self.find(key)
        if path is None:
            raise KeyError(f"no record {key} under {self.root}")
        record, reason = _read(path)
        if record is None:
            raise RecordError(f"{path}: {reason}")
        return record

    def set_aside(self, checkpoint_sha256: str, folder: str) -> list[Path]:
        """Move every record of one checkpoint (and the files beside it that share its key,
        e.g. ``<key>.predictions.npz``) to ``<root>/.superseded/<folder>/<task>/<dataset>/``.

        For records of a checkpoint that was replaced (a retrained stale pretraining): they
        are kept, not deleted, but readers skip the dot-folder, so a leaderboard no longer
        shows them beside the new checkpoint's. Returns the new paths of the records.
        """
        moved = []
        for path in sorted(self.root.glob("*/*/*.json")):
            if path.name.startswith(".") or path.parts[-3].startswith("."):
                continue
            record, _ = _read(path)
            if record is None or (record.get("identity") or {}).get("checkpoint_sha256") != checkpoint_sha256:
                continue
            target_dir = self.root / ".superseded" / folder / path.parent.relative_to(self.root)
            target_dir.mkdir(parents=True, exist_ok=True)
            with self._lock(record["key"]):
                for sibling in sorted(path.parent.glob(f"{record['key']}.*")):
                    os.replace(sibling, target_dir / sibling.name)
            moved.append(target_dir / path.name)
        return moved

    def delete(self, key: str) -> bool:
        """Remove the record of ``key``; True if there was one."""
        with self._lock(_check_key(key)):
            path = self.find(key)
            if path is None:
                return False
            path.unlink(missing_ok=True)
            return True

    def iter_records(
        self, task: str | None = None, dataset: str | None = None, problems: list[Problem] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Valid records, optionally of one task and/or dataset, in path order.

        Unreadable, invalid or misplaced files are skipped and reported as ``Problem``
        into ``problems`` (or as a ``UserWarning`` when ``problems`` is None).
        """
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob(f"{task or '*'}/{dataset or '*'}/*.json")):
            if any(part.startswith(".") for part in path.relative_to(self.root).parts):
                continue
            record, reason = _read(path)
            if record is None:
                problem = Problem(path, reason)
                if problems is None:
                    warnings.warn(f"skipped record file {path}: {reason}", stacklevel=2)
                else:
                    problems.append(problem)
                continue
            yield record

    def read_all(self, task: str | None = None, dataset: str | None = None) -> tuple[list[dict[str, Any]], list[Problem]]:
        problems: list[Problem] = []
        records = list(self.iter_records(task, dataset, problems))
        return records, problems


def _read(path: Path) -> tuple[dict[str, Any] | None, str]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"unreadable: {exc}"
    try:
        validate_record(record)
    except RecordError as exc:
        return None, f"invalid record: {exc}"
    if path.stem != record["key"]:
        return None, f"file name does not match the record key {record['key']}"
    if (path.parent.parent.name, path.parent.name) != (record["task"], record["dataset"]):
        return None, f"misplaced: the record is for {record['task']}/{record['dataset']}"
    return record, ""
