"""Run files that lose nothing: locked, append-only JSON lines with a side manifest.

``mosaic eval`` (one trajectory per line) and ``mosaic collect`` (one group of ``k``
trajectories per line) write through :class:`JsonlStore`:

* **One writer.** An exclusive lock (``filelock``, on ``FILE.lock``) is taken for the whole
  run; a second run on the same file stops at once with :class:`~mosaic_gym.errors.RunFileError`
  naming the file, instead of interleaving its bytes with the first one's.
* **Every line survives.** Each line is written whole, flushed and fsync'd. A lone surrogate
  in an agent's text (``"\\ud800"`` in a JSON tool call) is written as a ``\\u`` escape, so
  the line always encodes as UTF-8 and loads back equal
  (:func:`~mosaic_gym.core.trajectory.json_line`).
* **Resumable.** Running the same command again continues: the keys already in the file are
  skipped. A last line cut short by a killed run is cut back and its item played again. A run
  with different settings is refused (never a silent truncation); ``fresh=True`` (``--fresh``)
  starts over explicitly.
* **Loadable as data.** The data file holds rows only; the run's settings and the history of
  its runs live in the side manifest ``FILE.manifest.json``, so ``datasets.load_dataset("json",
  data_files=FILE)`` reads it like any JSON-lines file. Files of the first collection format
  (a header line and resume lines mixed with the rows) are still read.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mosaic_gym.core.trajectory import Trajectory, json_line
from mosaic_gym.errors import RunFileError

MANIFEST_SUFFIX = ".manifest.json"
LOCK_SUFFIX = ".lock"
_META_TYPES = ("header", "resume")  # lines of the first collection format


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + MANIFEST_SUFFIX)


def scan(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects of ``path`` and the byte length of its valid part.

    A killed run can leave a last line without its newline (or one that does not parse): it
    is left out, and the returned length stops before it. A broken line anywhere else raises
    :class:`RunFileError` with its line number.
    """
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]  # a tail without newline is a cut-off write
    lines = complete.split(b"\n")[:-1]
    items: list[dict[str, Any]] = []
    good = 0
    for number, raw in enumerate(lines, start=1):
        try:
            item = json.loads(raw)
            if not isinstance(item, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if number == len(lines):
                break
            raise RunFileError(f"{path}:{number}: corrupt line ({exc}); only a cut-off last "
                               "line is repaired automatically") from None
        items.append(item)
        good += len(raw) + 1
    return items, good


def read_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """The data rows of a run file (meta lines of the first format skipped)."""
    items, _ = scan(Path(path))
    return (item for item in items if item.get("type") not in _META_TYPES)


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    """The run's settings: the side manifest, or the header line of a first-format file."""
    path = Path(path)
    side = manifest_path(path)
    if side.exists():
        return dict(json.loads(side.read_text(encoding="utf-8")))
    if path.exists():
        items, _ = scan(path)
        if items and items[0].get("type") == "header":
            return items[0]
    return None


def group_row(spec: Any, rollouts: Sequence[Trajectory]) -> dict[str, Any]:
    """The JSON row of one finished group."""
    return {"type": "group", "key": spec.key, **spec.as_dict(), "k": len(rollouts),
            "rollouts": [r.model_dump(mode="json") for r in rollouts]}


class JsonlStore:
    """An open, locked run file (use as a context manager).

    Args:
        path: the data file.
        settings: what defines the run (policy, env, split...); a file written with other
            values of ``must_match`` is refused.
        key: what identifies a row (rows already written are skipped on resume).
        must_match: the settings that must agree to resume.
        fresh: start over (the old data file and manifest are removed first).
    """

    def __init__(self, path: str | Path, settings: Mapping[str, Any], *,
                 key: Callable[[Mapping[str, Any]], str],
                 must_match: Sequence[str], fresh: bool = False) -> None:
        from filelock import FileLock, Timeout

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.key = key
        self._lock = FileLock(str(self.path.with_name(self.path.name + LOCK_SUFFIX)))
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise RunFileError(f"{self.path} is being written by another run (lock "
                               f"{self._lock.lock_file}); wait for it, or choose another "
                               "--out") from None
        try:
            self._open(settings, must_match, fresh)
        except BaseException:
            self._lock.release()
            raise

    def _open(self, settings: Mapping[str, Any], must_match: Sequence[str],
              fresh: bool) -> None:
        side = manifest_path(self.path)
        if fresh:
            self.path.unlink(missing_ok=True)
            side.unlink(missing_ok=True)
        old = read_manifest(self.path)
        items, good = scan(self.path) if self.path.exists() else ([], 0)
        if items and old is None:
            raise RunFileError(f"{self.path} holds data but no manifest "
                               f"({side.name}); pass --fresh to start over, or another --out")
        if old is not None:
            clash = [f"{name}: {old.get(name)!r} in the file, {settings.get(name)!r} now"
                     for name in must_match if old.get(name) != settings.get(name)]
            if clash:
                raise RunFileError(f"{self.path} holds a different run ({'; '.join(clash)}); "
                                   "pass --fresh to start over, or choose another --out")
        rows = [item for item in items if item.get("type") not in _META_TYPES]
        self.done: set[str] = {self.key(row) for row in rows}
        self.resumed = bool(rows)
        runs = list((old or {}).get("runs") or [])
        runs.append({"started": now(), **{k: settings.get(k) for k in ("seeds", "limit")}})
        manifest = {**(old or {}), **dict(settings), "runs": runs}
        manifest.pop("type", None)
        self._write_manifest(manifest)
        self._file = self.path.open("r+b" if self.path.exists() else "wb")
        self._file.truncate(good)
        self._file.seek(good)

    def _write_manifest(self, manifest: Mapping[str, Any]) -> None:
        side = manifest_path(self.path)
        tmp = side.with_name(side.name + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, side)

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row (flushed and fsync'd before returning)."""
        self._file.write((json_line(row) + "\n").encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())
        self.done.add(self.key(row))

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self._lock.is_locked:
            self._lock.release()

    def __enter__(self) -> JsonlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
