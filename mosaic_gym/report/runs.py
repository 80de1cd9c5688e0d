"""Reading a run folder: what ``mosaic eval`` wrote (``metrics.json``, ``trajectories.jsonl``).

A run is read whole and checked on the way in: a missing file, a line that is not JSON or a
record without an outcome raises :class:`~mosaic_gym.errors.RunError` naming the file and
line, because a viewer or comparison silently built on half a run would misreport it.
Episodes are keyed by (scenario, attack, seed), the identity two runs share when they were
played with the same plan, which is what the paired comparison pairs on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mosaic_gym.core.trajectory import Trajectory
from mosaic_gym.errors import RunError

EpisodeKey = tuple[str, str, int]


def episode_key(record: Mapping[str, Any]) -> EpisodeKey:
    """(scenario id, attack or "none", seed): the identity of an episode across runs."""
    return (str(record["scenario_id"]), str(record.get("attack") or "none"),
            int(record["seed"]))


@dataclass
class Run:
    """One run folder, loaded."""

    path: Path
    metrics: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.metrics.get("policy") or self.path.name)

    @property
    def outcomes(self) -> list[dict[str, Any]]:
        return [record["outcome"] for record in self.records]

    def by_key(self) -> dict[EpisodeKey, dict[str, Any]]:
        return {episode_key(record): record for record in self.records}


def load_run(path: Path | str) -> Run:
    """Load ``path/metrics.json`` and ``path/trajectories.jsonl``; raise ``RunError`` if bad."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: no such run folder (expected the --out folder of mosaic eval)")
    metrics_file, trajectories = path / "metrics.json", path / "trajectories.jsonl"
    for needed in (metrics_file, trajectories):
        if not needed.is_file():
            raise RunError(f"{needed}: missing (is {path} a folder written by mosaic eval?)")
    try:
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{metrics_file}: not JSON ({exc})") from None
    if not isinstance(metrics, dict):
        raise RunError(f"{metrics_file}: expected a JSON object")
    return Run(path=path, metrics=metrics, records=read_records(trajectories))


def read_records(trajectories: Path) -> list[dict[str, Any]]:
    """The records of a trajectories JSONL file, checked line by line (``RunError``)."""
    if not trajectories.is_file():
        raise RunError(f"{trajectories}: missing")
    records = []
    with trajectories.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RunError(f"{trajectories}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("outcome"), dict):
                raise RunError(f"{trajectories}:{number}: a trajectory record needs an outcome")
            try:
                typed = Trajectory.load(record)  # format 1 or 2, checked
            except (ValueError, TypeError) as exc:
                raise RunError(f"{trajectories}:{number}: not a trajectory record "
                               f"({str(exc).splitlines()[0]})") from None
            row = typed.model_dump(mode="json")
            # The seed an episode is named by across runs: the reset seed (format 1 records
            # knew only the episode seed).
            row["seed"] = typed.reset_seed if typed.reset_seed is not None else typed.episode_seed
            row.update({k: v for k, v in record.items() if k not in row})  # e.g. injected_text
            records.append(row)
    return records
