"""Issue 10 item 4: scenario files are data unless trusted, and loading is bounded.

Each hostile file of the issue must be refused at load time with a ScenarioError that
names the file and (where one exists) the line and the field; the ones that used to
hang or exhaust memory are loaded in a bounded child process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mosaic_gym.errors import ScenarioError
from mosaic_gym.scenario.loader import load_file
from tests.hardening.bounded import run_bounded
from tests.hardening.scenarios import SHELL_SCENARIO, write_scenario

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
BILLION_LAUGHS = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
       f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
       f"*{chr(97 + i)}]" for i in range(8)]) + "\n"


def _load_error(tmp_path: Path, text: str, **kwargs: object) -> ScenarioError:
    path = write_scenario(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_file(path, **kwargs)  # type: ignore[arg-type]
    error = caught.value
    assert error.file == str(path), error
    return error


def _with_utility(predicate: str) -> str:
    return SHELL_SCENARIO.replace("  utility: {file_exists: /home/user/notes.txt}",
                                  f"  utility: {predicate}")


# -- code references -----------------------------------------------------------------
def test_python_predicate_needs_trust_and_the_error_says_where_and_how(tmp_path: Path) -> None:
    error = _load_error(tmp_path, _with_utility('{python: "os:getcwd"}'))
    assert error.line == 14 and error.field == "checks.utility.python", error
    assert "--trust-code" in str(error) and "trust_code=True" in str(error)


def test_nested_python_predicate_is_found_too(tmp_path: Path) -> None:
    predicate = '{all: [{file_exists: /tmp}, {not: {python: "sys:exit"}}]}'
    error = _load_error(tmp_path, _with_utility(predicate))
    assert error.field is not None and error.field.endswith("python"), error


def test_trusted_file_loads_and_the_env_refuses_without_trust(tmp_path: Path) -> None:
    from mosaic_gym.envs.mosaic_env import MosaicEnv

    path = write_scenario(tmp_path, _with_utility('{python: "os:getcwd"}'))
    assert load_file(path, trust_code=True)[0].trusted
    with pytest.raises(ScenarioError, match="--trust-code"):
        MosaicEnv(scenario=str(path))


def test_an_untrusted_variant_built_by_hand_cannot_run_code(tmp_path: Path) -> None:
    """The judge re-checks trust: a variant whose flag is off fails closed."""
    import dataclasses

    from mosaic_gym.envs.mosaic_env import MosaicEnv

    path = write_scenario(tmp_path, _with_utility('{python: "sys:exit"}'))
    env = MosaicEnv(scenario=str(path), trust_code=True)
    env.pool = [dataclasses.replace(variant, trusted=False) for variant in env.pool]
    env.reset(seed=0)
    *_, info = env.step("<answer>done</answer>")
    assert info["outcome"]["termination"] == "infra_error"
    assert "trust" in info["outcome"]["infra_error"]
    env.close()


# -- YAML bounds -----------------------------------------------------------------------
def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, BILLION_LAUGHS)
    assert path.stat().st_size < 1000
    message = run_bounded(f"""
        from mosaic_gym.errors import ScenarioError
        from mosaic_gym.scenario.loader import load_file
        try:
            load_file({str(path)!r})
        except ScenarioError as error:
            report(str(error))
        else:
            report("loaded")
    """)
    assert "nodes" in message or "aliases" in message, message


@pytest.mark.parametrize(("text", "words"), [
    ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested"),
    ("x: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "nested"),
    ("x: " + "9" * 5000 + "\n", "number"),
    ("a: &a [*a]\n", "recursive"),
    ("id: one\nid: two\n", "duplicate key 'id'"),
])
def test_hostile_yaml_is_a_scenario_error(tmp_path: Path, text: str, words: str) -> None:
    error = _load_error(tmp_path, text)
    assert words in str(error), error


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    text = SHELL_SCENARIO.replace("expected: complete\n", "expected: complete\ntitle: again\n")
    error = _load_error(tmp_path, text)
    assert error.line == 6 and "first on line 2" in str(error), error


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", ".NaN"])
def test_non_finite_numbers_are_refused(tmp_path: Path, value: str) -> None:
    source = (LIBRARY / "benign" / "finance_pay_approved_invoice.yaml").read_text()
    text = source.replace("balance: 50000}", f"balance: {value}}}")
    assert text != source
    error = _load_error(tmp_path, text)
    assert "finite" in str(error) and error.line is not None


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    text = SHELL_SCENARIO + "tags: [" + ", ".join(["t"] * 600_000) + "]\n"
    error = _load_error(tmp_path, text)
    assert "bytes" in str(error)


# -- templating bounds -----------------------------------------------------------------
def test_doubling_placeholders_are_bounded(tmp_path: Path) -> None:
    lines = ["  v0: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"] + [
        f'  v{i}: "{{{{v{i - 1}}}}}{{{{v{i - 1}}}}}"' for i in range(1, 28)]
    text = SHELL_SCENARIO.replace("secrets:\n", "variables:\n" + "\n".join(lines) + "\nsecrets:\n")
    path = write_scenario(tmp_path, text)
    message = run_bounded(f"""
        from mosaic_gym.errors import ScenarioError
        from mosaic_gym.scenario.loader import load_file
        try:
            load_file({str(path)!r})
        except ScenarioError as error:
            report(str(error))
        else:
            report("loaded")
    """)
    assert "placeholders expand to more than" in message, message


@pytest.mark.parametrize(("value", "words"), [
    ("{faker: pystr, args: {max_chars: 100000000}}", "outside"),
    ("{faker: add_provider, args: {provider: x}}", "unknown Faker provider 'add_provider'"),
    ("{faker: seed_instance, args: {seed: 1}}", "unknown Faker provider 'seed_instance'"),
    ("{faker: password, args: {length: 1000000}}", "outside"),
    ("{faker: bothify, args: {text: 5}}", "expected text"),
    ("{faker: name, args: {anything: 1}}", "takes no argument"),
])
def test_faker_calls_are_allow_listed_and_bounded(tmp_path: Path, value: str,
                                                  words: str) -> None:
    text = SHELL_SCENARIO.replace("secrets:\n", f"variables:\n  v: {value}\nsecrets:\n")
    error = _load_error(tmp_path, text)
    assert words in str(error) and error.field == "variables.v", error


def test_faker_of_one_scenario_cannot_change_another(tmp_path: Path) -> None:
    """Episodes of a scenario stay reproducible whatever other files ask of Faker."""
    from mosaic_gym.envs.mosaic_env import MosaicEnv

    path = write_scenario(tmp_path, SHELL_SCENARIO)
    first = MosaicEnv(scenario=str(path))
    _, info = first.reset(seed=5)
    hostile = SHELL_SCENARIO.replace("secrets:\n", "variables:\n  v: {faker: add_provider, "
                                                   "args: {provider: faker.providers.bank}}\n"
                                                   "secrets:\n")
    with pytest.raises(ScenarioError):
        load_file(write_scenario(tmp_path, hostile, "h.yaml"))
    _, again = first.reset(seed=5)
    assert info["messages"] == again["messages"]
    first.close()


# -- names -----------------------------------------------------------------------------
def test_unknown_tool_is_a_load_error_with_line_and_field(tmp_path: Path) -> None:
    text = SHELL_SCENARIO.replace("tools: [run_shell, read_file, post_to_url]",
                                  "tools: [run_shell, read_fle, post_to_url]")
    error = _load_error(tmp_path, text)
    assert error.line == 7 and error.field == "tools.1" and "read_fle" in str(error), error


def test_unknown_attack_strategy_is_a_load_error(tmp_path: Path) -> None:
    source = (LIBRARY / "injection" / "finance_pay_utility_bill.yaml").read_text()
    lines = source.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith("injection:"))
    lines.insert(index + 1, "  strategies: [authority, no_such_strategy]\n")
    error = _load_error(tmp_path, "".join(lines))
    assert error.field == "injection.strategies.1" and error.line == index + 2, error
