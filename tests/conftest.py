"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI runs the property tests on a fixed example sequence (no deadline: the machine
# is shared), so a red run always reproduces; HYPOTHESIS_PROFILE=explore searches anew.
settings.register_profile("ci", derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "scenarios"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def library():
    from mosaic_gym.scenario.library import load_library

    return load_library([LIBRARY])


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script("bench_sft")``: a script of ``benchmarks/`` loaded as a module, so a
    test can run its ``main`` in a reduced form (benchmarks rot unseen otherwise)."""
    import importlib.util

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
