"""Checks of what a user typed, run by the CLI before any episode, model or file is touched.

Why a module of its own: a command that fails half-way (after playing part of a plan, after a
rollout collection, after overwriting ``runs/eval``) costs the user the work and the old
results; a check that fails first costs nothing. Each function here either returns the
value to use or raises :class:`~mosaic_gym.errors.UsageError` (or
:class:`~mosaic_gym.errors.MissingExtraError`), whose message the CLI prints as one red line
with exit code 2. Nothing here imports a heavy package: extras are looked up with
``importlib.util.find_spec``, which finds a package without importing it.
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Sequence
from pathlib import Path

from mosaic_gym.errors import MissingExtraError, UsageError

#: What each extra provides, by the top-level modules it installs.
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("torch", "transformers", "trl", "datasets"),
    "vllm": ("openai",),
    "ray": ("ray",),
    "docker": ("docker",),
    "inspect": ("inspect_ai",),
    "openenv": ("openenv",),
    "report": ("matplotlib",),
}


def require_extra(extra: str, purpose: str) -> None:
    """Raise :class:`MissingExtraError` (with the ``pip install`` line) if ``extra`` is absent."""
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise MissingExtraError(extra, module, purpose)


def did_you_mean(value: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_env_id(env_id: str) -> str:
    """A registered Gymnasium id, or a ``UsageError`` naming the closest mosaic id."""
    from gymnasium.envs.registration import registry

    import mosaic_gym  # noqa: F401  (registers the ids)

    if env_id in registry:
        return env_id
    ours = sorted(name for name in registry if name.startswith("mosaic/"))
    # Compare case-insensitively too: "mosaic/injection-v0" is a common slip.
    lowered = {name.lower(): name for name in ours}
    hint = (f"; did you mean {lowered[env_id.lower()]!r}?" if env_id.lower() in lowered
            else did_you_mean(env_id, ours))
    raise UsageError(f"unknown environment id {env_id!r}{hint} (mosaic ids: {', '.join(ours)})")


def check_count(flag: str, value: int | None) -> int | None:
    """A count flag (``--limit``, ``--seeds``, ``--k``) must be at least 1 when given."""
    if value is not None and value < 1:
        raise UsageError(f"{flag} must be at least 1 (got {value})")
    return value


def check_choice(flag: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise UsageError(f"unknown {flag} {value!r}{did_you_mean(value, choices)} "
                         f"(choose from {', '.join(choices)})")
    return value


def check_attack(attack: str) -> str:
    from mosaic_gym.attacks import list_strategies

    return check_choice("--attack", attack, ["all", "none", *list_strategies()])


def check_split(split: str) -> str:
    return check_choice("--split", split, ["train", "test", "ood", "all"])


def check_backend(backend: str) -> str:
    check_choice("--backend", backend, ["fake", "docker"])
    if backend == "docker":
        require_extra("docker", "--backend docker")
    return backend


def check_scenario(scenario: str | None, env_id: str) -> tuple[str, str | None]:
    """The env id and scenario to use: with ``--scenario``, ``mosaic/Scenario-v0`` and the
    scenario (an existing path made absolute, so a bare folder name is not taken for an id).

    ``--scenario`` under the default ``mosaic/All-v0`` is taken to mean ``Scenario-v0`` (so the
    table is titled with the env that was really played); under another id it is an error.
    """
    if scenario is None:
        if env_id == "mosaic/Scenario-v0":
            raise UsageError("mosaic/Scenario-v0 needs --scenario (a scenario id, a YAML file "
                             "or a folder of them)")
        return env_id, None
    if env_id not in ("mosaic/All-v0", "mosaic/Scenario-v0"):
        raise UsageError(f"--scenario plays mosaic/Scenario-v0; drop --env {env_id} or pass "
                         "--env mosaic/Scenario-v0")
    from mosaic_gym.errors import ScenarioError
    from mosaic_gym.scenario.library import find_variant

    path = Path(scenario)
    looks_like_path = scenario.endswith((".yaml", ".yml")) or path.exists() or scenario.startswith(
        (".", "/", "~"))
    if looks_like_path and not path.exists():
        raise UsageError(f"--scenario {scenario}: no such file or folder")
    if path.exists():
        scenario = str(path.resolve())
    try:
        find_variant(scenario, None)
    except ScenarioError as exc:
        raise UsageError(f"--scenario {scenario}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"--scenario {scenario}: cannot read it ({exc})") from None
    return "mosaic/Scenario-v0", scenario


def check_policy(policy: str) -> str:
    """A built-in baseline, an existing recipe (with the train extra), or ``module:factory``."""
    from mosaic_gym.agent.baselines import BASELINES
    from mosaic_gym.agent.user_policy import is_policy_spec, load_user_policy

    if policy.endswith((".yaml", ".yml")):
        if not Path(policy).is_file():
            raise UsageError(f"--policy {policy}: no such recipe file")
        return policy
    if is_policy_spec(policy):
        load_user_policy(policy)  # import errors now, not after the plan is built
        return policy
    if policy not in BASELINES:
        raise UsageError(f"unknown --policy {policy!r}{did_you_mean(policy, list(BASELINES))}"
                         f" (built-in: {', '.join(BASELINES)}; or a recipe YAML, or "
                         "module:factory)")
    return policy


def check_file(flag: str, path: Path) -> Path:
    if not path.exists():
        raise UsageError(f"{flag} {path}: no such file")
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder, expected a file")
    return path


def check_ray(address: str | None) -> None:
    """Connect to Ray now (``local`` starts one), so "no cluster" is said before any work."""
    if address is None:
        return
    require_extra("ray", "--ray")
    import ray

    if ray.is_initialized():
        return
    try:
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = (" (start one with 'ray start --head', or use --ray local)"
                if address == "auto" else "")
        raise UsageError(f"--ray {address}: no Ray cluster reachable{hint}: {first}") from None


def check_train_recipe(path: Path) -> object:
    """Load a training recipe and check it whole, TRL keys included, before any training.

    Needs the train extra (the TRL keys are checked against the fields of the TRL config
    dataclass of the recipe's method).
    """
    check_file("--recipe", path)
    require_extra("train", "mosaic train")
    from mosaic_gym.train.recipes import check_trl_keys, config_class_for, load_recipe

    recipe = load_recipe(path)
    check_trl_keys(config_class_for(recipe.method), recipe)
    env = getattr(recipe, "env", None)
    if env is not None:
        check_env_id(env.id)
        check_attack(env.attack)
    return recipe


def check_play_flags(*, split: str, attack: str, backend: str, env_id: str,
                     scenario: str | None, policy: str) -> tuple[str, str | None]:
    """The flags every command that plays episodes shares (eval, collect); returns the
    ``(env_id, scenario)`` to play (``--scenario`` picks ``mosaic/Scenario-v0``)."""
    check_split(split)
    check_attack(attack)
    check_backend(backend)
    check_env_id(env_id)
    env_id, scenario = check_scenario(scenario, env_id)
    if policy.endswith((".yaml", ".yml")):
        require_extra("train", "a policy recipe")
    check_policy(policy)
    return env_id, scenario
