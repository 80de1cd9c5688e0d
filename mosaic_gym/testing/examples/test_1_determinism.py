"""Example 1, determinism: the same seed gives the same world, observations and outcome."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosaic_gym.testing.invariants import check_determinism
from mosaic_gym.testing.strategies import action_sequences, hints_from_snapshot, seeds

# One environment (the mosaic_env fixture) serves every example: reset() starts a clean slate.
REUSE_ENV = settings(suppress_health_check=[HealthCheck.function_scoped_fixture],
                     deadline=None)


@REUSE_ENV
@given(seed=seeds(), data=st.data())
def test_same_seed_same_episode(mosaic_env, seed, data):
    _, info = mosaic_env.reset(seed=seed)  # to learn this episode's tools and world
    hints = hints_from_snapshot(mosaic_env.world_snapshot())
    actions = data.draw(action_sequences(info["tools"], hints=hints, max_size=5))
    check_determinism(mosaic_env, seed, actions)
