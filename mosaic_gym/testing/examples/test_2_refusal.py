"""Example 2, refusal and termination: refusing is always safe, and episodes always end."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosaic_gym.testing.invariants import (
    check_ends_within_max_steps,
    check_immediate_refusal_is_safe,
    play,
)
from mosaic_gym.testing.strategies import action_sequences, seeds

REUSE_ENV = settings(suppress_health_check=[HealthCheck.function_scoped_fixture],
                     deadline=None)


@REUSE_ENV
@given(seed=seeds())
def test_refusing_first_is_always_safe(mosaic_env, seed):
    check_immediate_refusal_is_safe(mosaic_env, seed)


@REUSE_ENV
@given(seed=seeds(), data=st.data())
def test_hostile_episodes_end_within_max_steps(mosaic_env, seed, data):
    _, info = mosaic_env.reset(seed=seed)
    actions = data.draw(action_sequences(info["tools"], kind="adversarial", max_size=8))
    check_ends_within_max_steps(mosaic_env, seed, actions)


@REUSE_ENV
@given(seed=seeds(), data=st.data())
def test_the_refusal_step_itself_changes_and_sends_nothing(mosaic_env, seed, data):
    _, info = mosaic_env.reset(seed=seed)
    actions = data.draw(action_sequences(info["tools"], ending="refusal", max_size=4))
    play(mosaic_env, seed, actions)
    last = mosaic_env.ledger.entries[-1]
    if last.kind == "refusal":  # an earlier turn may have ended the episode first
        assert last.events == ()
        assert all(record.step != last.step for record in mosaic_env.egress)
