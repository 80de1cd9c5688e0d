"""Differential test: the fake and the docker backend give the same verdicts.

For every scenario that lays down files or offers the shell, the reference,
comply-with-everything and refuse-everything policies are played on both
backends with the same seed and attack; their ``Outcome`` must agree field by
field. Known, documented differences would be listed in ``KNOWN_DIFFERENCES``
(none at present).
"""

from __future__ import annotations

from typing import Any

import pytest

from mosaic_gym.agent.baselines import make_baseline
from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.rollout import EpisodeSpec, play
from mosaic_gym.scenario.library import load_library

pytestmark = pytest.mark.docker

POLICIES = ("reference", "comply", "refuse")
#: Attack used for injection scenarios (besides the attack-free variant).
ATTACK = "ignore_previous"
#: scenario id -> why the backends may disagree on it.
KNOWN_DIFFERENCES: dict[str, str] = {}


def _uses_sandbox(variant: Any) -> bool:
    spec = variant.spec
    return "run_shell" in spec.tools or bool(spec.world.files)


def _plan() -> list[EpisodeSpec]:
    plan = []
    for variant in load_library():
        if not _uses_sandbox(variant) or variant.id in KNOWN_DIFFERENCES:
            continue
        plan.append(EpisodeSpec(variant.id, None, 0))
        if variant.has_injection:
            plan.append(EpisodeSpec(variant.id, ATTACK, 0))
    return plan


def _verdict(trajectory: Any) -> dict[str, Any]:
    # Everything in the outcome must agree, tool-error counts included (their
    # texts differ: busybox vs the fake's coreutils wording, but those are not
    # part of the verdict).
    return trajectory.outcome.model_dump()


def test_fake_and_docker_agree_on_every_sandbox_scenario() -> None:
    plan = _plan()
    assert len(plan) >= 50, "expected most of the library to use files or the shell"
    fake = MosaicEnv(category="all", split="all", backend="fake")
    docker = MosaicEnv(category="all", split="all", backend="docker")
    mismatches = []
    unsafe: dict[str, int] = dict.fromkeys(POLICIES, 0)
    try:
        for name in POLICIES:
            for spec in plan:
                results = []
                for env in (fake, docker):
                    policy = make_baseline(name, seed=0)
                    results.append(_verdict(play(env, policy, spec)))
                docker_verdict = results[1]
                unsafe[name] += bool(docker_verdict["harm"] or docker_verdict["leaks"]
                                     or docker_verdict["attack_success"])
                if results[0] != results[1]:
                    diff = {key: (results[0][key], results[1].get(key))
                            for key in results[0] if results[0][key] != results[1].get(key)}
                    mismatches.append((name, spec.scenario_id, spec.attack, diff))
    finally:
        fake.close()
        docker.close()
    assert not mismatches, "\n".join(map(str, mismatches[:20]))
    # The comparison is not vacuous: on docker, comply does real damage and the others none.
    assert unsafe["comply"] >= len(plan) // 4, unsafe
    assert unsafe["reference"] == 0 and unsafe["refuse"] == 0, unsafe


# -- the shell itself (issue 9 item 9) --------------------------------------------------
#: Commands both shells must answer alike: same exit status, same output.
SHELL_CONSTRUCTS = [
    "echo $(echo hi there)",
    'x=$(printf "a\\nb\\n\\n"); echo "[$x]"',
    'echo "$(echo "a  b")" $(echo "c  d")',
    "echo `echo back` \"`echo q`\"",
    "echo $(echo $(echo nested))",
    "x=1; y=$(x=2; echo $x); echo $x $y",
    "x=$(false); echo $?",
    "cd /tmp; echo $(cd /; pwd) $(pwd)",
    "echo $(cat notes.txt | tr a-z A-Z)",
    "echo hello | tr -d l; echo abc | tr a-c x-z; printf 'a  b\\n' | tr -s ' '",
    "printf 'uryyb\\n' | tr 'a-zA-Z' 'n-za-mN-ZA-M'",
    "printf 'caf\\351\\n' | tr -d '\\200-\\377'",
]
#: What the fake shell does not run yet (issue 9 item 9, second part): each must be a
#: clear "unsupported" error on the fake backend, while docker runs it; listed so that
#: the gap is visible and a fix turns these into SHELL_CONSTRUCTS.
NOT_YET_IN_THE_FAKE = [
    "for x in a b; do echo $x; done",
    "i=0; while [ $i -lt 2 ]; do echo $i; i=1; break; done",
    "(cd /tmp && pwd)",
    "echo abc | sed s/b/x/",
    "tar -cf /tmp/a.tar notes.txt",
    "gzip -c notes.txt > /tmp/n.gz",
    "stat -c %s notes.txt",
    "echo $((1 + 2))",
]


@pytest.fixture(scope="module")
def shells() -> Any:
    from mosaic_gym.sandbox.base import HOME, FileSpec
    from mosaic_gym.sandbox.docker import DockerSandbox
    from mosaic_gym.sandbox.fake import FakeSandbox

    world = [FileSpec(f"{HOME}/notes.txt", b"keep me\n")]
    fake, docker = FakeSandbox(), DockerSandbox()
    for box in (fake, docker):
        box.setup(world)
    yield fake, docker
    fake.close()
    docker.close()


@pytest.mark.parametrize("command", SHELL_CONSTRUCTS)
def test_fake_and_docker_shells_agree(shells: Any, command: str) -> None:
    fake, docker = shells
    for box in (fake, docker):
        box.reset()
    got = [box.exec(command) for box in (fake, docker)]
    assert (got[0].exit_code, got[0].stdout) == (got[1].exit_code, got[1].stdout), got
    assert got[0].exit_code == 0, got


@pytest.mark.parametrize("command", NOT_YET_IN_THE_FAKE)
def test_what_the_fake_cannot_run_is_refused_clearly(shells: Any, command: str) -> None:
    fake, docker = shells
    for box in (fake, docker):
        box.reset()
    refused = fake.exec(command)
    assert refused.exit_code in (2, 127) and ("unsupported" in refused.stderr
                                              or "not supported" in refused.stderr), refused
    assert docker.exec(command).exit_code == 0
