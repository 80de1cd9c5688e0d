"""The stress tests run only when asked (``MOSAIC_STRESS=1``): CI's run.sh does, in a
separate step after the suite; a plain ``pytest`` skips them (they take a minute)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("MOSAIC_STRESS") == "1":
        return
    skip = pytest.mark.skip(reason="stress tests run with MOSAIC_STRESS=1 (tests/run.sh does)")
    for item in items:
        if "tests/stress/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)
