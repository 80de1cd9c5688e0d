"""What the scripted baselines see of an external suite's episode.

The baselines in ``mosaic_gym.agent.baselines`` read ``env.current_scenario`` the way they
read a resolved mosaic scenario: ``id``, ``spec.expected``, ``spec.title``,
``spec.solution`` (calls, then an answer or a refusal), ``spec.unsafe_solution`` and
``spec.injection.attacker_solution``. An external suite has no YAML, so its env builds these
small frozen records from the suite's own ground truth at reset (AgentDojo's
``ground_truth()``, BFCL's possible answers). Pool entries, built before any environment is
loaded, carry an empty solution; only the entry returned after ``reset`` is complete.

``spec.injection.strategies`` lists the one attack the env was made with, so that
``runner.episode_plan`` (used by ``mosaic collect``) plans each pair once with that attack
and once without (its benign variant), as it does for mosaic's injection scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mosaic_gym.scenario.schema import SolutionSpec


def _empty_solution() -> SolutionSpec:
    return SolutionSpec(calls=[], answer="Done.", refuse=False)


@dataclass(frozen=True)
class SuiteInjection:
    goal: str
    strategies: list[str]
    attacker_solution: SolutionSpec = field(default_factory=_empty_solution)


@dataclass(frozen=True)
class SuiteSpec:
    title: str
    user_request: str
    expected: str = "complete"
    solution: SolutionSpec = field(default_factory=_empty_solution)
    unsafe_solution: SolutionSpec | None = None
    injection: SuiteInjection | None = None


@dataclass(frozen=True)
class SuiteScenario:
    """One episode family of an external suite (a task, a task x injection pair, an item)."""

    id: str
    category: str
    domain: str
    spec: SuiteSpec
    split: str = "ood"
    expected: str = "complete"


@dataclass(frozen=True)
class TurnsSolution:
    """A scripted run over several user turns (BFCL multi-turn): each turn's calls, then an
    answer that ends the turn. Reads like a ``SolutionSpec`` (``calls``, ``answer``,
    ``refuse``: the first turn) for code that knows only those; the baselines play ``turns``.
    """

    turns: list[SolutionSpec]
    refuse: bool = False

    @property
    def calls(self) -> list[Any]:
        return self.turns[0].calls if self.turns else []

    @property
    def answer(self) -> str:
        return self.turns[0].answer if self.turns else "Done."
