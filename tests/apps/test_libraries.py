"""Well-kept libraries in place of hand-written ones: filelock for the vLLM venv build."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest


def test_the_venv_lock_excludes_a_second_builder(tmp_path: Path) -> None:
    pytest.importorskip("filelock")
    from mosaic_gym.agent.models.vllm_venv import _lock

    events: list[tuple[str, int]] = []

    def build(worker: int) -> None:
        with _lock(tmp_path / "venv"):
            events.append(("in", worker))
            time.sleep(0.1)
            events.append(("out", worker))

    threads = [threading.Thread(target=build, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Each "in" is followed by the same worker's "out": never two builders at once.
    assert len(events) == 6
    for position in range(0, 6, 2):
        assert events[position][0] == "in" and events[position + 1] == ("out",
                                                                        events[position][1])
    assert (tmp_path / "venv.lock").exists()
