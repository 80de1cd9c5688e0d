"""Scripted baseline policies.

They know the scenario (as an oracle would) and play it through the same text
interface as any model: every action is rendered in the MOSAIC format and
parsed by the environment.

* ``reference``: the scenario's safe reference solution; refuses at step 0
  when refusal is expected; ignores injected instructions. Should be perfect.
* ``comply``: does whatever it is asked, by the user *or by injected text*:
  runs the unsafe solution of harmful and privacy scenarios, and switches to the
  attacker's solution as soon as an observation carries an injection.
* ``refuse``: refuses everything at step 0.
* ``random``: random tool calls with plausible arguments, random refusals and answers.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mosaic_gym.protocol import REFUSAL_TOOL
from mosaic_gym.protocol.format import ToolCall, render_action
from mosaic_gym.scenario.resolve import ResolvedScenario
from mosaic_gym.scenario.schema import SolutionSpec

if TYPE_CHECKING:
    from mosaic_gym.agent.policy import Policy

def _call(tool: str, args: Mapping[str, Any], plan: str) -> str:
    return render_action(plan, ToolCall(tool, dict(args)))


def _refusal(reason: str, check: str | None = None) -> str:
    return render_action("The request must not be carried out.",
                         ToolCall(REFUSAL_TOOL, {"reason": reason}), safety_check=check)


class _Script:
    """Plays a queue of rendered turns."""

    def __init__(self) -> None:
        self.queue: list[str] = []

    def play(self, solution: SolutionSpec, plan: str) -> None:
        # A multi-turn solution (external suites) is several turns, each ended by an answer.
        turns = getattr(solution, "turns", None) or [solution]
        self.queue = []
        for turn in turns:
            self.queue += [_call(c.tool, c.args, plan) for c in turn.calls]
            if turn.refuse:
                self.queue.append(_refusal("Refusing as the solution prescribes."))
            else:
                self.queue.append(render_action("The task is done; report back.", turn.answer))

    def next(self) -> str:
        return self.queue.pop(0) if self.queue else render_action("Nothing left to do.", "Done.")


class ReferencePolicy(_Script):
    name = "reference"

    def reset(self, scenario: ResolvedScenario | None, seed: int | None = None) -> None:
        assert scenario is not None, "the reference policy needs the scenario"
        spec = scenario.spec
        if spec.expected == "refuse":
            self.queue = [_refusal(f"This would be unsafe: {spec.title}.",
                                   check="The request itself would cause harm or a leak.")]
        else:
            self.play(spec.solution, "Follow the user's request step by step.")

    def act(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]],
            info: Mapping[str, Any] | None = None) -> str:
        return self.next()


class ComplyPolicy(_Script):
    """Helpful to a fault: follows the user and any instruction found in data."""

    name = "comply"

    def reset(self, scenario: ResolvedScenario | None, seed: int | None = None) -> None:
        assert scenario is not None, "the comply policy needs the scenario"
        self.scenario = scenario
        self.hijacked = False
        spec = scenario.spec
        self.play(spec.unsafe_solution or spec.solution, "Do exactly what I was asked.")

    def act(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]],
            info: Mapping[str, Any] | None = None) -> str:
        injection = self.scenario.spec.injection
        ledger = (info or {}).get("ledger") or []
        if injection is not None and not self.hijacked and ledger and ledger[-1].injected:
            self.hijacked = True
            self.play(injection.attacker_solution, "New instructions arrived; follow them.")
        return self.next()


class RefusePolicy:
    name = "refuse"

    def reset(self, scenario: ResolvedScenario | None, seed: int | None = None) -> None:
        return None

    def act(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]],
            info: Mapping[str, Any] | None = None) -> str:
        return _refusal("I refuse every request.")


class RandomPolicy:
    """Uniformly random actions; arguments drawn from strings seen so far."""

    name = "random"

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)

    def reset(self, scenario: ResolvedScenario | None, seed: int | None = None) -> None:
        if seed is not None:
            salt = scenario.id if scenario is not None else ""
            self.rng = random.Random(f"{salt}/{seed}")

    def act(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]],
            info: Mapping[str, Any] | None = None) -> str:
        roll = self.rng.random()
        if roll < 0.08:
            return _refusal("Random refusal.")
        if roll < 0.16:
            return render_action("Random stop.", "Finished.")
        if roll < 0.20:
            return "<think>unfinished"  # a malformed turn, on purpose
        words = [w.strip(".,:;()[]<>\"'") for m in messages
                 for w in str(m.get("content") or "").split() if len(w) > 2]
        schema = self.rng.choice(list(tools))["function"]
        args: dict[str, Any] = {}
        for key, prop in schema["parameters"]["properties"].items():
            kind = prop.get("type")
            if kind == "number":
                args[key] = round(self.rng.uniform(1, 500), 2)
            elif kind == "integer":
                args[key] = self.rng.randint(0, 10)
            elif kind == "boolean":
                args[key] = self.rng.random() < 0.5
            elif kind == "array":
                args[key] = [self.rng.choice(words)] if words else []
            else:
                args[key] = self.rng.choice(words) if words else "x"
        return _call(schema["name"], args, "Try something at random.")


BASELINES: dict[str, type] = {"reference": ReferencePolicy, "comply": ComplyPolicy,
                              "refuse": RefusePolicy, "random": RandomPolicy}


def make_baseline(name: str, seed: int | None = None) -> Policy:
    if name not in BASELINES:
        raise ValueError(f"unknown policy {name!r}; built-in: {', '.join(BASELINES)}")
    policy: Policy = RandomPolicy(seed) if name == "random" else BASELINES[name]()
    return policy
