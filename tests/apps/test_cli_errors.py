"""The CLI explains: each user error is one red line and exit code 2, said before any work.

"Before any work" is checked by what is left on disk: a rejected ``mosaic eval`` must not
create or overwrite its ``--out`` folder.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mosaic_gym import cli


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str],
            monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["mosaic", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
        raise SystemExit(0)
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), captured.out, captured.err


def assert_one_red_line(code: int, err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize(("args", "fragments"), [
    (["--env", "mosaic/Injecton-v0"], ["did you mean 'mosaic/Injection-v0'"]),
    (["--env", "mosaic/injection-v0"], ["did you mean 'mosaic/Injection-v0'"]),
    (["--limit", "-1"], ["--limit must be at least 1"]),
    (["--limit", "0"], ["--limit must be at least 1"]),
    (["--seeds", "0"], ["--seeds must be at least 1"]),
    (["--attack", "foo"], ["unknown --attack 'foo'", "authority"]),
    (["--attack", "authorty"], ["did you mean 'authority'"]),
    (["--split", "tset"], ["did you mean 'test'"]),
    (["--backend", "dokcer"], ["did you mean 'docker'"]),
    (["--policy", "comply2"], ["did you mean 'comply'"]),
    (["--policy", "policies/absent.yaml"], ["no such recipe file"]),
    (["--policy", "no_such_module_xyz:make"], ["no module named 'no_such_module_xyz'"]),
    (["--scenario", "absent/dir.yaml"], ["no such file or folder"]),
    (["--scenario", "no.such.scenario"], ["no scenario with id"]),
    (["--scenario", "scenarios/benign", "--env", "mosaic/Harmful-v0"], ["mosaic/Scenario-v0"]),
    (["--env", "mosaic/Scenario-v0"], ["needs --scenario"]),
    (["--limit", "abc"], ["Invalid value for '--limit'"]),
    (["--no-such-flag"], ["No such option"]),
])
def test_eval_user_errors(args: list[str], fragments: list[str], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "eval"
    code, _, err = run_cli(["eval", *args, "--out", str(out)], capsys, monkeypatch)
    assert_one_red_line(code, err, *fragments)
    assert not out.exists(), "a rejected eval must not touch its output folder"


def test_an_earlier_result_survives_a_rejected_eval(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "eval"
    code, _, _ = run_cli(["eval", "--policy", "comply", "--limit", "3", "--out", str(out)],
                         capsys, monkeypatch)
    assert code == 0
    before = (out / "metrics.json").read_text()
    for bad in (["--limit", "0"], ["--seeds", "0"], ["--attack", "foo"]):
        code, _, err = run_cli(["eval", *bad, "--out", str(out)], capsys, monkeypatch)
        assert_one_red_line(code, err)
    assert (out / "metrics.json").read_text() == before


def test_a_missing_extra_names_the_pip_line(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    for command in (["tiny", "--out", str(tmp_path / "t")], ["sft"], ["replicate", "--quick"],
                    ["train", "--recipe", "trainers/tiny-dpo.yaml"]):
        code, _, err = run_cli(command, capsys, monkeypatch)
        assert_one_red_line(code, err, "pip install 'mosaic-gym[train]'")
    assert not (tmp_path / "t").exists()


def test_ray_auto_without_a_cluster(capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    out = tmp_path / "groups.jsonl"
    code, _, err = run_cli(["collect", "--ray", "auto", "--limit", "1", "--out", str(out)],
                           capsys, monkeypatch)
    assert_one_red_line(code, err, "--ray auto: no Ray cluster", "ray start --head")
    assert not out.exists()


def test_a_typo_in_a_recipes_trl_keys_stops_before_any_rollout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("trl")
    text = Path("trainers/tiny-dpo.yaml").read_text(encoding="utf-8")
    output = tmp_path / "dpo-out"
    recipe = tmp_path / "typo.yaml"
    recipe.write_text(text.replace("learning_rate:", "learning_rat:").replace(
        "output_dir: runs/tiny/dpo", f"output_dir: {output}"), encoding="utf-8")
    code, _, err = run_cli(["train", "--recipe", str(recipe)], capsys, monkeypatch)
    assert_one_red_line(code, err, "'learning_rat'", "learning_rate")
    assert not output.exists()


def test_a_users_policy_plays_through_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_agents.py").write_text(textwrap.dedent('''
        from mosaic_gym.agent.baselines import make_baseline

        class Cautious:
            name = "cautious"
            def __init__(self):
                self.inner = make_baseline("refuse")
                self.calls = 0
            def reset(self, scenario, seed=None):
                self.inner.reset(scenario, seed=seed)
            def act(self, messages, tools, info=None):
                self.calls += 1
                return self.inner.act(messages, tools, info)

        def make():
            return Cautious()

        def broken():
            raise RuntimeError("no weights here")

        not_a_policy = dict
    '''), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = run_cli(["eval", "--policy", "my_agents:make", "--limit", "4",
                              "--out", "run"], capsys, monkeypatch)
    assert code == 0, err
    import json

    document = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert document["episodes"] == 4 and document["policy"] == "my_agents:make"
    assert document["metrics"]["all"]["over_refusal"] == 1.0  # it refused everything
    for spec, fragment in (("my_agents:broken", "the factory raised RuntimeError"),
                           ("my_agents:not_a_policy", "no act or reset method"),
                           ("my_agents:absent", "has no attribute 'absent'")):
        code, _, err = run_cli(["eval", "--policy", spec, "--out", "bad"], capsys, monkeypatch)
        assert_one_red_line(code, err, fragment)
    assert not (tmp_path / "bad").exists()


def test_scenario_folder_titles_the_table_with_scenario_env(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    out = tmp_path / "run"
    code, _, err = run_cli(["eval", "--scenario", "scenarios/benign", "--limit", "2",
                            "--out", str(out)], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["env"] == "mosaic/Scenario-v0"


def test_the_installed_entry_point_prints_no_traceback() -> None:
    result = subprocess.run([sys.executable, "-m", "mosaic_gym.cli", "eval", "--env", "nope"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: ")


@pytest.mark.parametrize(("args", "fragments"), [
    (["view", "no/such/run"], ["no such run folder"]),
    (["compare", "no/such/run"], ["at least two run folders"]),
    (["compare", "no/a", "no/b"], ["no such run folder"]),
    (["export-inspect", "no/such/run"], ["no such run folder"]),
    (["serve", "--env", "mosaic/Privcy-v0"], ["did you mean 'mosaic/Privacy-v0'"]),
    (["serve", "--attack", "foo"], ["unknown --attack 'foo'"]),
    (["serve", "--max-sessions", "0"], ["--max-sessions must be at least 1"]),
    (["serve", "--port", "0"], ["--port must be between 1 and 65535"]),
    (["collect", "--k", "0"], ["--k must be at least 1"]),
    (["collect", "--env", "mosaic/Al-v0"], ["did you mean 'mosaic/All-v0'"]),
])
def test_other_commands_explain_too(args: list[str], fragments: list[str],
                                    capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert_one_red_line(code, err, *fragments)
