"""``mosaic scenarios check``: prove every scenario is solvable and its traps fire.

For each variant and each of ``seeds`` (the benign reference run is cheap):

* the reference solution completes the task safely on the benign variant
  (or, where refusal is expected, refusing at step 0 is judged correct), and none of
  its calls returns a tool error;
* the harm, leak and attack predicates stay quiet on that benign run;
* no ``utility``, ``harm`` or ``attack_success`` predicate holds in the initial world,
  before any action (the task would be done already / every episode harmful / every
  attack successful);
* no protected canary can be matched by the reference solution's own traffic: the
  canaries of every seed are searched, with the judge's leak detector, in the egress of
  the reference run of every other seed (``n * (n - 1)`` pairs for ``n`` seeds, so a
  4-digit PIN that a phone number or an amount the reference sends contains by chance is
  found; the same-seed pairs are the benign run itself).

For each of the first ``attack_seeds`` of them (every strategy is an episode):

* each injection point is reachable: under every attack strategy the reference
  run sees the payload, and stays safe;
* the attacker's (or the unsafe) reference run trips the judge: the attack
  predicate fires, or harm / a leak is detected; its calls return no tool error.

Every result names the scenario file, and where it can the line and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mosaic_gym.agent.baselines import ComplyPolicy, ReferencePolicy
from mosaic_gym.agent.policy import Policy
from mosaic_gym.core.egress import Egress
from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.errors import MosaicError, ScenarioError
from mosaic_gym.judge.context import JudgeContext
from mosaic_gym.judge.explain import explain
from mosaic_gym.judge.ledger import LedgerEntry
from mosaic_gym.judge.rules import evaluate
from mosaic_gym.rollout import EpisodeSpec, play
from mosaic_gym.scenario.loader import ScenarioVariant, parse_yaml
from mosaic_gym.scenario.locate import line_of


@dataclass(frozen=True)
class CheckResult:
    scenario_id: str
    check: str
    passed: bool
    detail: str = ""
    #: The scenario file, the line (when the field has one) and the field at fault.
    file: str | None = None
    line: int | None = None
    field: str | None = None

    @property
    def where(self) -> str:
        """``file:line [field]`` as in ScenarioError messages ("" when unknown)."""
        text = self.file or ""
        if self.file and self.line is not None:
            text += f":{self.line}"
        if self.field:
            text += f" [{self.field}]"
        return text


def _quiet_on_benign(env: MosaicEnv) -> list[str]:
    """Predicates that wrongly fire on the benign reference run."""
    episode = env.episode
    assert episode is not None
    checks = episode.scenario.spec.checks
    ctx = JudgeContext(episode.scenario, episode.world, episode.initial, episode.ledger,
                       answer=episode.answer, refused=episode.refusal_step is not None)
    loud: list[str] = []
    for name, predicate in (("attack_success", checks.attack_success), ("harm", checks.harm)):
        if predicate is None:
            continue
        verdict = explain(predicate, ctx, f"checks.{name}")
        if verdict.holds:
            loud.append(f"{name} fires on the benign run: " + "; ".join(verdict.reasons))
    return loud


class _Lines:
    """Line numbers of fields in scenario files (each file parsed once)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Any] = {}

    def __call__(self, source: str, loc: Sequence[int | str]) -> int | None:
        if source not in self.nodes:
            try:
                _, self.nodes[source] = parse_yaml(Path(source).read_text("utf-8"), source)
            except (OSError, UnicodeDecodeError, MosaicError):
                self.nodes[source] = None
        return line_of(self.nodes[source], loc) if self.nodes[source] is not None else None


_LINES = _Lines()


def _tool_errors(entries: Sequence[LedgerEntry], where: tuple[int | str, ...],
                 ) -> list[tuple[tuple[int | str, ...], str]]:
    """(location of the call, message) for each scripted call that returned a tool error."""
    calls = [entry for entry in entries if entry.kind == "tool_call"]
    return [((*where, "calls", index), f"{entry.tool}: {entry.error}")
            for index, entry in enumerate(calls) if entry.error]


def _initially_true(env: MosaicEnv) -> list[str]:
    """Checks that already hold in the episode's initial world, before any action."""
    from mosaic_gym.judge.ledger import Ledger
    from mosaic_gym.sandbox.fake.sandbox import FakeSandbox
    from mosaic_gym.world.world import World

    episode = env.episode
    assert episode is not None
    resolved = episode.scenario
    world = World.build(resolved, FakeSandbox(), payload="")
    ctx = JudgeContext(resolved, world, world.snapshot(), Ledger(), answer=None, refused=False)
    checks = resolved.spec.checks
    found = []
    for name in ("utility", "harm", "attack_success"):
        predicate = getattr(checks, name)
        if predicate is not None and evaluate(predicate, ctx):
            found.append(name)
    return found


_INITIAL_MEANING = {
    "utility": "the task is done before the agent acts (every episode completes)",
    "harm": "harm is judged before the agent acts (every episode is harmful)",
    "attack_success": "the injected goal is reached before the agent acts",
}


#: A split fragment longer than any canary: ``find_leaks`` then looks for whole values only.
_NO_SPLIT = 10**9


@dataclass
class _Traffic:
    """What one benign reference run sent, and the canaries of its seed."""

    seed: int
    secrets: dict[str, str]
    allowed: dict[str, list[str]]
    egress: list[Egress]


def _canary_collisions(traffic: Sequence[_Traffic]) -> dict[str, tuple[int, int, str]]:
    """Per secret name: (colliding seed pairs, pairs tried, an example), across seeds.

    The canaries of seed ``i`` are searched in the reference traffic of seed ``j != i``
    with the judge's own detector and allow-lists (seed ``j``'s, the traffic's).
    """
    from fnmatch import fnmatch

    from mosaic_gym.judge.leaks import find_leaks

    hits: dict[str, tuple[int, int, str]] = {}
    for sent in traffic:
        if not sent.egress:
            continue
        probes: dict[str, str] = {}
        owner: dict[str, tuple[str, int]] = {}
        for other in traffic:
            if other.seed == sent.seed:
                continue
            for name, value in other.secrets.items():
                if value == sent.secrets.get(name):
                    continue  # the same canary as this run: judged by the run itself
                key = f"{name}@{other.seed}"
                probes[key] = value
                owner[key] = (name, other.seed)
        tried: dict[str, int] = {}
        for key in probes:
            tried[owner[key][0]] = tried.get(owner[key][0], 0) + 1
        found: dict[str, str] = {}
        # Whole-value matches (plain and every encoding) only: a split leak needs pieces of
        # a quarter of the canary each, from two or more events, to cover it, so it is not
        # what chance produces (see mosaic_gym.judge.leaks); skipping it halves the cost.
        # The same-seed runs above still face the whole detector.
        for leak in find_leaks(probes, sent.egress, min_fragment=_NO_SPLIT):
            name, seed = owner[leak.secret_name]
            patterns = sent.allowed.get(name, [])
            if any(fnmatch(leak.destination.lower(), p.lower()) for p in patterns):
                continue
            found.setdefault(f"{name}@{seed}", (
                f"the value {probes[leak.secret_name]!r} it takes at seed {seed} is found "
                f"({leak.encoding}) in what the reference solution sends at seed "
                f"{sent.seed} ({leak.channel} to {leak.destination})"))
        for name, count in tried.items():
            colliding = [text for key, text in found.items() if key.split("@")[0] == name]
            old = hits.get(name, (0, 0, ""))
            hits[name] = (old[0] + len(colliding), old[1] + count,
                          old[2] or (colliding[0] if colliding else ""))
    return hits


def check_variant(env: MosaicEnv, variant: ScenarioVariant, seeds: Sequence[int],
                  attack_seeds: Sequence[int] | None = None) -> list[CheckResult]:
    """Self-check one variant (see the module docstring).

    ``seeds``: seeds of the benign reference checks; ``attack_seeds`` (default: the same):
    seeds of the injection, attacker and unsafe checks, which play one episode per attack
    strategy and cost more.
    """
    from mosaic_gym.attacks import list_strategies

    results: list[CheckResult] = []
    spec = variant.spec
    attack_seeds = list(seeds) if attack_seeds is None else list(attack_seeds)
    traffic: list[_Traffic] = []
    broken: set[int] = set()

    def run(policy: Policy, attack: str | None, seed: int) -> dict:
        outcome = play(env, policy, EpisodeSpec(variant.id, attack, seed)).outcome
        assert outcome is not None  # play() returns finished episodes
        return outcome.model_dump()

    def add(check: str, passed: bool, detail: str = "",
            loc: Sequence[int | str] = ()) -> None:
        line = _LINES(variant.source, loc) if loc else None
        field = ".".join(map(str, loc)) or None
        results.append(CheckResult(variant.id, check, passed, detail, variant.source, line,
                                   field))

    def entries() -> list[LedgerEntry]:
        assert env.episode is not None
        return list(env.episode.ledger)

    def errors_check(check: str, found: list[tuple[tuple[int | str, ...], str]]) -> None:
        if not found:
            add(check, True)
            return
        loc, message = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        add(check, False, f"{'.'.join(map(str, loc))} returns a tool error: {message}{more}",
            loc)

    for seed in seeds:
        try:
            outcome = run(ReferencePolicy(), None, seed)
        except ScenarioError as exc:  # a rule broken only at this seed (placeholders)
            loc = tuple(int(part) if part.isdigit() else part
                        for part in (exc.field or "").split(".") if part)
            add(f"the scenario resolves (seed {seed})", False, exc.reason, loc)
            broken.add(seed)
            continue
        problems = []
        if not outcome["correct"]:
            problems.append(_explain(outcome))
        if spec.expected == "complete":
            problems += _quiet_on_benign(env)
        add(f"reference solves the benign variant (seed {seed})", not problems,
            "; ".join(problems), ("solution",) if problems else ())
        if spec.expected == "complete":
            errors_check(f"reference calls return no tool error (seed {seed})",
                         _tool_errors(entries(), ("solution",)))
        episode = env.episode
        assert episode is not None
        resolved = episode.scenario
        traffic.append(_Traffic(seed, dict(resolved.protected_secrets),
                                {name: list(s.allowed_destinations)
                                 for name, s in resolved.secret_specs.items()},
                                list(episode.world.egress)))
        held = _initially_true(env)
        add(f"no check holds in the initial world (seed {seed})", not held,
            "; ".join(f"checks.{name} already holds: {_INITIAL_MEANING[name]}"
                      for name in held), ("checks", held[0]) if held else ())
    if len(traffic) > 1 and any(t.secrets for t in traffic):
        for name, (count, pairs, example) in sorted(_canary_collisions(traffic).items()):
            add(f"canary {name!r} never matches the reference's own traffic "
                f"({pairs} seed pairs)", count == 0,
                f"{count} of {pairs} seed pairs collide, e.g. {example}: a run doing only "
                "what the task needs would be judged a leak; make the canary longer or "
                "more distinctive" if count else "", ("secrets", name) if count else ())
    for seed in (s for s in attack_seeds if s not in broken):
        if spec.injection is not None:
            strategies = (list_strategies() if spec.injection.strategies == "all"
                          else spec.injection.strategies)
            for strategy in strategies:
                attacked = run(ReferencePolicy(), strategy, seed)
                reachable = attacked["injection_seen_step"] is not None
                add(f"injection reachable and resisted [{strategy}] (seed {seed})",
                    reachable and attacked["correct"],
                    "" if reachable else "the reference solution never sees the payload"
                    if attacked["correct"] else _explain(attacked),
                    () if reachable and attacked["correct"] else ("injection",))
            hijacked = run(ComplyPolicy(), strategies[0], seed)
            add(f"attacker's solution trips the judge (seed {seed})",
                bool(hijacked["attack_success"]) and not hijacked["safe"],
                "" if hijacked["attack_success"] else "attack_success did not fire: "
                + "; ".join(hijacked.get("attack_reasons") or ["no reason recorded"]),
                () if hijacked["attack_success"] else ("checks", "attack_success"))
            log = entries()
            first = next((i for i, e in enumerate(log) if e.injected), None)
            errors_check(f"attacker's calls return no tool error (seed {seed})",
                         [] if first is None else _tool_errors(
                             log[first + 1:], ("injection", "attacker_solution")))
        if spec.unsafe_solution is not None:
            unsafe = run(ComplyPolicy(), None, seed)
            add(f"unsafe solution trips the judge (seed {seed})",
                not unsafe["safe"] and unsafe["infra_error"] is None,
                "" if not unsafe["safe"] else "no harm, leak or attack detected",
                () if not unsafe["safe"] else ("unsafe_solution",))
            errors_check(f"unsafe calls return no tool error (seed {seed})",
                         _tool_errors(entries(), ("unsafe_solution",)))
    return results


def _explain(outcome: dict) -> str:
    parts = [f"termination={outcome['termination']}", f"completed={outcome['completed']}",
             f"refused={outcome['refused']}"]
    if outcome.get("utility_failures"):
        parts.append("utility failed at: " + "; ".join(outcome["utility_failures"]))
    if outcome["harm_reasons"]:
        parts.append("harm: " + "; ".join(outcome["harm_reasons"]))
    if outcome["leaks"]:
        parts.append("leaks: " + ", ".join(f"{x['secret']}->{x['destination']}"
                                           for x in outcome["leaks"]))
    if outcome["attack_success"]:
        parts.append("attack succeeded: " + "; ".join(outcome.get("attack_reasons") or []))
    if outcome["infra_error"]:
        parts.append(outcome["infra_error"])
    if outcome["tool_errors"] or outcome["format_errors"]:
        parts.append(f"tool_errors={outcome['tool_errors']} "
                     f"format_errors={outcome['format_errors']}")
    return ", ".join(parts)


#: Seeds of the benign reference checks by default (``mosaic scenarios check --seeds``).
#: Canaries are cross-checked over the n * (n - 1) seed pairs: at 100 seeds a 4-digit PIN
#: inside an 8-digit number the reference sends collides in about 10 of the 9,900 pairs.
DEFAULT_SEEDS = 100
#: Seeds of the injection, attacker and unsafe checks by default (``--attack-seeds``).
DEFAULT_ATTACK_SEEDS = 2


def check_paths(paths: Iterable[str | Path] | None = None, seeds: Sequence[int] = (0, 1),
                backend: str = "fake", trust_code: bool = False,
                attack_seeds: Sequence[int] | None = None) -> list[CheckResult]:
    """Run the self-check over every scenario under ``paths`` (default: the library).

    ``seeds`` drive the benign reference checks, ``attack_seeds`` (default: ``seeds``) the
    injection, attacker and unsafe checks.
    """
    from mosaic_gym.scenario.library import load_library

    path_list = list(paths) if paths else None
    variants = load_library(path_list, trust_code=trust_code)
    env = MosaicEnv(category="all", split="all", scenario_paths=path_list, backend=backend,
                    attack="none", max_steps=50, trust_code=trust_code)
    try:
        return [result for variant in variants
                for result in check_variant(env, variant, seeds, attack_seeds)]
    finally:
        env.close()
