"""The AgentDojo state diff is total: no change of environment state goes unrecorded."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("agentdojo")

from mosaic_gym.envs.suites import agentdojo as ad  # noqa: E402
from mosaic_gym.envs.suites.agentdojo_events import diff  # noqa: E402


def leaf_paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaf_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaf_paths(value, (*prefix, index))
    else:
        yield prefix


DUMPS = {suite: ad.suite_data(suite).load({}).model_dump() for suite in ad.SUITES}
PATHS = {suite: [p for p in leaf_paths(dump) if p] for suite, dump in DUMPS.items()}


@settings(max_examples=150)
@given(st.sampled_from(ad.SUITES), st.data())
def test_any_changed_leaf_gives_an_event(suite, data):
    path = data.draw(st.sampled_from(PATHS[suite]))
    changed = copy.deepcopy(DUMPS[suite])
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = ("changed", node[path[-1]])
    assert diff(DUMPS[suite], changed), path


def test_no_change_no_event():
    for suite, dump in DUMPS.items():
        assert diff(dump, copy.deepcopy(dump)) == [], suite
