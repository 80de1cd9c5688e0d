"""The policy contract and the one way to build a policy from what a user names.

A policy maps the chat so far (OpenAI messages) and the offered tools (JSON schemas) to the
next assistant turn, as MOSAIC text; the environment parses it. ``reset`` starts an
episode (the scenario is given to scripted oracles only; models ignore it) with a sampling
seed. A policy may also offer ``act_batch`` (one turn for each of many chats), which the
rollout driver uses to serve many environments with one batched model call.

:func:`make_policy` accepts a built-in baseline name (``reference``, ``comply``, ``refuse``,
``random``), a policy recipe (``policies/*.yaml``, needs the ``train`` extra), or a user's own
``module:factory`` (:mod:`mosaic_gym.agent.user_policy`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

PolicySource = Any
"""A baseline name or recipe path, a :class:`Policy` object, or a zero-argument factory."""


class Policy(Protocol):
    """Maps the chat so far (and the tools) to the next assistant turn."""

    name: str

    def reset(self, scenario: Any | None, seed: int | None = None) -> None: ...

    def act(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]],
            info: Mapping[str, Any] | None = None) -> str: ...


def make_policy(name: str | os.PathLike[str], seed: int = 0) -> Any:
    """A built-in baseline by name, a policy recipe file (YAML), or ``module:factory``.

    Raises ``ValueError`` for an unknown name or a missing recipe file.
    """
    from mosaic_gym.agent.user_policy import is_policy_spec, load_user_policy

    name = str(name)
    if is_policy_spec(name):
        return load_user_policy(name)
    if name.endswith((".yaml", ".yml")):
        if not Path(name).is_file():
            raise ValueError(f"policy recipe {name!r} not found")
        from mosaic_gym.agent.recipes import load_policy  # the train extra

        return load_policy(name)
    from mosaic_gym.agent.baselines import make_baseline

    return make_baseline(name, seed=seed)


def check_policy(policy: PolicySource) -> None:
    """Fail before any work starts: an unknown baseline name or a missing recipe file."""
    from mosaic_gym.agent.user_policy import is_policy_spec

    if isinstance(policy, (str, os.PathLike)):
        name = str(policy)
        if is_policy_spec(name):
            return
        if name.endswith((".yaml", ".yml")):
            if not Path(name).is_file():
                raise ValueError(f"policy recipe {name!r} not found")
        else:
            from mosaic_gym.agent.baselines import BASELINES

            if name not in BASELINES:
                raise ValueError(f"unknown policy {name!r}; built-in: {', '.join(BASELINES)}"
                                 " (or a recipe .yaml)")


def policy_name(policy: PolicySource) -> str:
    """The name a record gives the policy: the name or path it was built from, or its own."""
    if isinstance(policy, (str, os.PathLike)):
        return str(policy)
    return str(getattr(policy, "name", None) or type(policy).__name__)


def policy_factory(policy: PolicySource) -> tuple[Any | None, Callable[[], Any] | None]:
    """``(shared, factory)``: one shared policy object, or a factory of per-slot policies.

    A baseline name gives a factory (cheap, stateful policies, one per environment slot); a
    recipe gives one loaded policy, shared; a policy object is shared; any other callable is
    the factory. Raises ``TypeError`` for anything else.
    """
    from mosaic_gym.agent.user_policy import is_policy_spec

    if isinstance(policy, (str, os.PathLike)):
        name = str(policy)
        if name.endswith((".yaml", ".yml")) or is_policy_spec(name):
            return make_policy(name), None
        make_policy(name)  # fail now on an unknown name
        return None, lambda: make_policy(name)
    if hasattr(policy, "act"):
        return policy, None
    if callable(policy):
        return None, policy
    raise TypeError(f"policy must be a name, a recipe path, a Policy or a factory, "
                    f"not {type(policy).__name__}")
