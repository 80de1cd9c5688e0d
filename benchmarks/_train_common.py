"""What the training benchmarks (``bench_sft.py``, ``bench_rl_head.py``) share: the machine's
load line, quiet Hugging Face logging, and the model to measure."""

from __future__ import annotations

import os
from pathlib import Path


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} / {five:.2f} (1 / 5 min), {os.cpu_count()} CPUs"


def quiet_hf() -> None:
    """No progress bars or warnings from datasets and transformers between the tables."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def model_or_tiny(model: str | None, work: Path, scenarios: list[str] | None) -> Path:
    """``model`` as given, else the tiny model built into ``work`` (from ``scenarios`` when
    given, else the library's train split)."""
    if model:
        return Path(model)
    from mosaic_gym.train.tiny import build_tiny

    return build_tiny(work / "tiny", scenario_paths=scenarios,
                      split="all" if scenarios else "train")
