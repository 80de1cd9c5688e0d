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
#: Compound commands, arithmetic, read, sed, tar, gzip, stat and cp /dev/null (issue 9
#: item 9, second part): the fake shell runs them, and must agree with the docker one on
#: status, output and the files each command leaves behind.
SHELL_CONSTRUCTS += [
    "for x in a b; do echo $x; done",
    "for f in *; do echo \"[$f]\"; done",
    "for x in $(echo 1 2) '3 4'; do echo \"<$x>\"; done",
    "i=0; while [ $i -lt 3 ]; do echo $i; i=$((i + 1)); done",
    "i=0; while [ $i -lt 2 ]; do echo $i; i=1; break; done",
    "i=0; until [ $i -ge 2 ]; do i=$((i+1)); done; echo $i",
    "for i in 1 2 3 4; do [ $i = 2 ] && continue; [ $i = 4 ] && break; echo $i; done",
    "for i in 1 2; do for j in a b; do echo $i$j; break 2; done; done",
    "printf '1 2\\n3 4\\n' > /tmp/p; while read a b; do echo \"$b-$a\"; done < /tmp/p",
    "printf 'x\\ny' | while read l || [ -n \"$l\" ]; do echo \"<$l>\"; done",
    "echo x | read v; echo \"[$v]\"",
    "printf 'k=v\\n' | { IFS== read k v; echo $k $v; }",
    "if [ -f notes.txt ]; then echo yes; elif true; then echo b; else echo no; fi",
    "case notes.txt in *.txt) echo text;; *) echo other;; esac",
    "case x in \"*\") echo lit;; a|x) echo alt;; esac",
    "(cd /tmp && pwd); pwd",
    "x=1; (x=2; echo $x); echo $x; (exit 3); echo $?",
    "{ echo a; echo b; } | wc -l",
    "{ echo out; echo err >&2; } 2>/dev/null > /tmp/g; cat /tmp/g",
    "for n in 1 2 3; do echo $n > /tmp/f$n; done; cat /tmp/f2",
    "echo $((1 + 2 * 3)) $(( (1+2)*3 )) $((7 / 2)) $((-7 % 3)) $((1 << 4)) $((0x10))",
    "x=5; echo $((x += 2)) $x $((x > 3 ? 1 : 0)) $((!x))",
    "echo $(( $(wc -l < notes.txt) + 1 ))",
    "[ -d /tmp ] && test -f notes.txt && [ abc != abd ] && echo tests",
    "seq 3; seq 2 2 6",
    "sed s/keep/lose/ notes.txt",
    "printf 'one\\ntwo\\nthree\\n' | sed -n 2p",
    "printf 'one\\ntwo\\nthree\\n' | sed '2d;s/e/E/g'",
    "printf 'one\\ntwo\\nthree\\n' | sed -n '/t/p'",
    "printf 'one\\ntwo\\nthree\\n' | sed '$d'",
    "printf 'one\\ntwo\\nthree\\n' | sed -e 1d -e 's/o/0/'",
    "printf 'ab\\n' | sed -E 's/(a)(b)/\\2\\1/'",
    "printf 'a a a\\n' | sed 's/A/x/2I'",
    "printf 'one\\ntwo\\nthree\\n' | sed ':a;N;$!ba;s/\\n/,/g'",
    "printf 'one\\ntwo\\n' | sed '1!G;h;$!d'",
    "sed -i 's/keep/kept/' notes.txt; cat notes.txt",
    "sed -i.bak 's/me/you/' notes.txt; cat notes.txt notes.txt.bak",
    "tar -cf /tmp/a.tar notes.txt && tar -tf /tmp/a.tar",
    "mkdir -p d/e && echo x > d/e/y && tar -cvf /tmp/d.tar d",
    "mkdir -p d && echo x > d/y && tar -czf /tmp/d.tgz d && rm -r d && tar -xzf /tmp/d.tgz"
    " && cat d/y",
    "mkdir /tmp/out && tar -cf - notes.txt | tar -xf - -C /tmp/out && cat /tmp/out/notes.txt",
    "tar -cf /tmp/n.tar notes.txt && tar -xOf /tmp/n.tar notes.txt",
    "gzip -c notes.txt | gunzip -c",
    "gzip notes.txt && ls && zcat notes.txt.gz && gunzip notes.txt.gz && ls && cat notes.txt",
    "gzip -k notes.txt && ls",
    "echo hi | gzip | gzip -d",
    "stat -c '%n %s %a %A %F %U' notes.txt",
    ": > /tmp/e; stat -c '%s %F' /tmp/e",
    "mkdir dd; chmod 700 dd; stat -c '%n %a %A %F' dd",
    "cp /dev/null notes.txt; wc -c < notes.txt; stat -c %s notes.txt",
    "cp notes.txt /dev/null && echo discarded",
    'f() { echo "hi $1 $#"; }; f a b',
    "g() { local x=2; echo $x; return 3; }; x=1; g; echo $? $x",
    'f() { printf "[%s]" "$@"; echo; }; f "a b" c; f',
    "f() { shift; echo $*; }; f 1 2 3; set -- x y; echo $1 $#",
    "x=a/b/c.tar.gz; echo ${x%.*} ${x%%.*} ${x#*/} ${x##*/} ${x/a/A} ${x//./_}",
    'for f in *.txt; do cp "$f" "/tmp/${f%.txt}.md"; done; cat /tmp/notes.md',
]
#: What the fake shell still refuses while docker runs it: each must be a clear
#: "unsupported" error on the fake backend (listed so that the gap stays visible).
NOT_YET_IN_THE_FAKE = [
    "[[ -n x ]] && echo double-brackets",
    "function f { echo hi; }; f",
]
#: Archive contents differ byte for byte (header times, compressor); their presence and
#: kind of change are compared, not their hashes.
ARCHIVES = (".tar", ".tgz", ".gz")


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


def _effects(box: Any, command: str) -> tuple[Any, dict[str, Any]]:
    """Run ``command`` on a freshly reset ``box``: its result, and what it changed
    (path -> (kind, content hash or None))."""
    box.reset()
    before = box.snapshot()
    result = box.exec(command)
    after = box.snapshot()
    changes = {}
    for change in box.diff(before, after):
        state = after.get(change.path)
        digest = None
        if state is not None and not state.is_dir and not change.path.endswith(ARCHIVES):
            digest = state.sha256
        changes[change.path] = (change.kind, digest)
    return result, changes


@pytest.mark.parametrize("command", SHELL_CONSTRUCTS)
def test_fake_and_docker_shells_agree(shells: Any, command: str) -> None:
    fake, docker = shells
    (got_fake, changed_fake), (got_docker, changed_docker) = (
        _effects(box, command) for box in (fake, docker))
    got = [got_fake, got_docker]
    assert (got[0].exit_code, got[0].stdout) == (got[1].exit_code, got[1].stdout), got
    assert got[0].exit_code == 0, got
    assert changed_fake == changed_docker, (changed_fake, changed_docker)


@pytest.mark.parametrize("command", NOT_YET_IN_THE_FAKE)
def test_what_the_fake_cannot_run_is_refused_clearly(shells: Any, command: str) -> None:
    fake, docker = shells
    for box in (fake, docker):
        box.reset()
    refused = fake.exec(command)
    assert refused.exit_code in (2, 127) and ("unsupported" in refused.stderr
                                              or "not supported" in refused.stderr), refused
    assert docker.exec(command).exit_code == 0
