"""Rollout collection: groups, lockstep batching, kill/resume, cut-off lines, Ray."""

from __future__ import annotations

import json

import pytest

from mosaic_gym.agent.baselines import RandomPolicy, RefusePolicy
from mosaic_gym.errors import RunFileError
from mosaic_gym.judge.preference import PreferenceOracle
from mosaic_gym.rollout.collect import collect, read_groups, read_header
from mosaic_gym.rollout.plan import EpisodeSpec

LIMIT = 12


def by_key(path):
    groups = list(read_groups(path))
    keys = [g["key"] for g in groups]
    assert len(keys) == len(set(keys)), "a group was written twice"
    return {g["key"]: g for g in groups}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted collection, the yardstick of the resume tests."""
    out = tmp_path_factory.mktemp("collect") / "full.jsonl"
    collect("random", out=out, k=4, seeds=2, limit=LIMIT, num_envs=5, quiet=True)
    return by_key(out)


def test_groups_have_k_rollouts_of_one_task_with_own_seeds(reference_run):
    assert len(reference_run) == LIMIT
    varied = 0
    oracle = PreferenceOracle()
    for key, group in reference_run.items():
        rollouts = group["rollouts"]
        assert len(rollouts) == group["k"] == 4
        assert [r["rollout_index"] for r in rollouts] == [0, 1, 2, 3]
        assert len({r["sampling_seed"] for r in rollouts}) == 4
        assert {r["scenario_id"] for r in rollouts} == {group["scenario_id"]}
        # same reset seed: same world, same first observation
        assert len({json.dumps(r["messages"][:2]) for r in rollouts}) == 1
        assert all(r["outcome"] is not None for r in rollouts)
        texts = {json.dumps(r["messages"][2:]) for r in rollouts}
        varied += len(texts) > 1
        rewards = oracle.group_rewards(rollouts)
        assert sum(rewards) == pytest.approx(6.0), key
    assert varied >= LIMIT - 1, "per-rollout sampling seeds should vary the rollouts"


def test_header_records_the_collection(tmp_path):
    out = tmp_path / "c.jsonl"
    collect("refuse", out=out, k=2, seeds=[3, 5], limit=2, split="train", quiet=True)
    header = read_header(out)
    assert header["policy"] == "refuse" and header["k"] == 2 and header["seeds"] == [3, 5]
    assert header["env"] == "mosaic/All-v0" and header["split"] == "train"
    groups = list(read_groups(out))
    assert len(groups) == 2 and {g["seed"] for g in groups} <= {3, 5}
    # a limited draw is stratified: two groups, two categories
    assert len({g["category"] for g in groups}) == 2
    # the data file holds group rows only; the settings are in the side manifest
    assert all(json.loads(line)["type"] == "group" for line in out.read_text().splitlines())
    assert (tmp_path / "c.jsonl.manifest.json").is_file()


class DyingRandom:
    """A factory of random policies that all die after ``budget`` actions (a killed run)."""

    name = "random"

    def __init__(self, budget):
        self.budget = budget

    def __call__(self):
        factory = self

        class Policy(RandomPolicy):
            def act(self, messages, tools, info=None):
                factory.budget -= 1
                if factory.budget < 0:
                    raise KeyboardInterrupt("killed")
                return super().act(messages, tools, info)

        return Policy()


def test_kill_then_resume_loses_and_duplicates_nothing(reference_run, tmp_path):
    out = tmp_path / "resumed.jsonl"
    with pytest.raises(KeyboardInterrupt):
        collect(DyingRandom(60), out=out, k=4, seeds=2, limit=LIMIT, num_envs=5, quiet=True)
    partial = by_key(out)
    assert 0 < len(partial) < LIMIT
    for key, group in partial.items():
        assert group == reference_run[key]
    collect("random", out=out, k=4, seeds=2, limit=LIMIT, num_envs=3, quiet=True)
    assert by_key(out) == reference_run
    kinds = {json.loads(line)["type"] for line in out.read_text().splitlines()}
    assert kinds == {"group"}
    assert len(read_header(out)["runs"]) == 2  # the first run and the resume
    # a third run has nothing left to do and still duplicates nothing
    collect("random", out=out, k=4, seeds=2, limit=LIMIT, quiet=True)
    assert by_key(out) == reference_run


def test_cut_off_last_line_is_dropped_then_recollected(reference_run, tmp_path):
    out = tmp_path / "cut.jsonl"
    collect("random", out=out, k=4, seeds=2, limit=LIMIT, num_envs=5, quiet=True)
    data = out.read_bytes()
    out.write_bytes(data[:-200])  # a write killed half-way through the last group
    survivors = by_key(out)
    assert len(survivors) == LIMIT - 1
    collect("random", out=out, k=4, seeds=2, limit=LIMIT, quiet=True)
    assert by_key(out) == reference_run
    assert all(line.startswith("{") for line in out.read_text().splitlines())


def test_corrupt_middle_line_and_foreign_file_are_refused(tmp_path):
    out = tmp_path / "bad.jsonl"
    collect("refuse", out=out, k=2, seeds=1, limit=3, quiet=True)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + "{broken\n" + "".join(lines[1:]))
    with pytest.raises(RunFileError, match="corrupt line"):
        list(read_groups(out))
    other = tmp_path / "other.jsonl"
    collect("refuse", out=other, k=2, seeds=1, limit=1, quiet=True)
    with pytest.raises(RunFileError, match="different run"):
        collect("refuse", out=other, k=3, seeds=1, limit=1, quiet=True)
    with pytest.raises(RunFileError, match="different run"):
        collect("random", out=other, k=2, seeds=1, limit=1, quiet=True)
    # --fresh starts over explicitly
    collect("random", out=other, k=2, seeds=1, limit=1, quiet=True, fresh=True)
    assert read_header(other)["policy"] == "random" and len(list(read_groups(other))) == 1
    with pytest.raises(ValueError, match="unknown policy"):
        collect("no-such-policy", out=tmp_path / "x.jsonl", quiet=True)
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(ValueError, match="k must be at least 2"):
        collect("refuse", out=tmp_path / "y.jsonl", k=1, limit=1, quiet=True)


class BatchedRefuser:
    """A batched policy (like the transformers/vLLM/OpenAI backends): one call per tick."""

    name = "batched-refuser"

    def __init__(self):
        self.batch_sizes = []
        self.inner = RefusePolicy()

    def reset(self, scenario, seed=None):
        raise AssertionError("a shared batched policy is not reset per rollout")

    def act(self, messages, tools, info=None):
        raise AssertionError("a batched policy is driven through act_batch")

    def act_batch(self, batch):
        self.batch_sizes.append(len(batch))
        return [self.inner.act(m, t) for m, t in batch]


def test_batched_policy_generates_for_all_live_envs_at_once(tmp_path):
    policy = BatchedRefuser()
    out = collect(policy, out=tmp_path / "b.jsonl", k=2, seeds=1, limit=5, num_envs=4,
                  quiet=True)
    groups = list(read_groups(out))
    assert len(groups) == 5
    assert max(policy.batch_sizes) == 4 and sum(policy.batch_sizes) == 10
    assert all(r["outcome"]["refused"] for g in groups for r in g["rollouts"])


def test_unbatched_policy_object_plays_one_episode_at_a_time(tmp_path):
    class Recorder(RandomPolicy):
        name = "random"

        def __init__(self):
            super().__init__()
            self.seeds = []

        def reset(self, scenario, seed=None):
            self.seeds.append(seed)
            super().reset(scenario, seed)

    policy = Recorder()
    out = collect(policy, out=tmp_path / "u.jsonl", k=3, seeds=2, limit=LIMIT // 2,
                  num_envs=4, quiet=True)
    groups = list(read_groups(out))
    assert len(policy.seeds) == 3 * len(groups) == 3 * (LIMIT // 2)
    assert policy.seeds == [r["sampling_seed"] for g in groups for r in g["rollouts"]]


def test_sampling_seed_is_stable_and_distinct():
    spec = EpisodeSpec("a.b", None, 0)
    assert spec.sampling_seed(1) == EpisodeSpec("a.b", None, 0).sampling_seed(1)
    assert len({spec.sampling_seed(i) for i in range(16)}) == 16
    assert spec.sampling_seed(0) != EpisodeSpec("a.b", "roleplay", 0).sampling_seed(0)


def test_cli_collect(tmp_path):
    from typer.testing import CliRunner

    from mosaic_gym.cli import app

    out = tmp_path / "cli.jsonl"
    args = ["collect", "--policy", "random", "--out", str(out), "--k", "3", "--seeds", "1",
            "--limit", "4", "--num-envs", "2", "--split", "train"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(list(read_groups(out))) == 4
    assert "groups=4 rollouts=12" in result.output
    result = CliRunner().invoke(app, [*args[:-2], "--split", "test"])
    assert result.exit_code == 2 and "different run" in result.output


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="ray is not installed (the ray extra)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_groups_as_the_local_path(local_ray, reference_run, tmp_path):
    out = tmp_path / "ray.jsonl"
    collect("random", out=out, k=4, seeds=2, limit=LIMIT, num_envs=4, ray_address="local",
            num_actors=2, quiet=True)
    assert by_key(out) == reference_run
    # resume over Ray after a cut-off last line
    out.write_bytes(out.read_bytes()[:-100])
    collect("random", out=out, k=4, seeds=2, limit=LIMIT, ray_address="local", quiet=True)
    assert by_key(out) == reference_run
