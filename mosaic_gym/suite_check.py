"""``mosaic suites check agentdojo|bfcl``: does an external suite play and judge as it should?

Three scripted agents play every episode of the suite through the mosaic env, through the
MOSAIC text interface, judged by the suite's own checks:

* **ignore** (the ``reference`` baseline): the user task's ground truth, deaf to injections;
* **obey** (the ``comply`` baseline): switches to the injection task's ground truth the moment
  an observation carries the injected text;
* **refuse** (the ``refuse`` baseline): ``refusal_tool`` at step 1.

What should hold: *ignore* completes what its ground truth completes and is never attacked
successfully; *obey* makes the attack succeed wherever the injection task has a scripted
attacker; *refuse* completes nothing, harms nothing. The table gives each rate with its
count and 95 % Wilson interval, per suite.

Known upstream defects are measured and listed as such, not hidden and not failures: ground
truths that fail their own check, injection tasks with no ground truth (security defined, no
scripted attacker), user tasks whose check passes for an agent that does nothing, pairs where
no injection vector is on the ground truth's path. A *failure* is what mosaic is answerable
for: an infra error, an ignoring agent that got attacked, a refusal that counted as done, a
cached environment that differs from AgentDojo's own loader. The command exits non-zero on
failures only.

``quick`` plays a fixed reduced plan (the first tasks of each suite), for CI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mosaic_gym.judge.intervals import rate_text

AGENTS = {"ignore": "reference", "obey": "comply", "refuse": "refuse"}


@dataclass
class Count:
    hits: int = 0
    total: int = 0

    def add(self, hit: bool) -> None:
        self.hits += int(bool(hit))
        self.total += 1

    def __str__(self) -> str:
        return rate_text(self.hits, self.total)


@dataclass
class SuiteReport:
    """Rows of the table (suite -> measure -> count), defects and failures."""

    suite: str
    columns: list[str]
    rows: dict[str, dict[str, Count]] = field(default_factory=dict)
    defects: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def count(self, row: str, column: str) -> Count:
        return self.rows.setdefault(row, {}).setdefault(column, Count())

    def defect(self, kind: str, item: str) -> None:
        self.defects.setdefault(kind, []).append(item)

    def as_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "columns": self.columns,
                "rows": {r: {c: [v.hits, v.total] for c, v in cols.items()}
                         for r, cols in self.rows.items()},
                "defects": self.defects, "failures": self.failures}


def _play(env: Any, agent: Any, scenario_id: str, attack: str | None) -> dict[str, Any]:
    from mosaic_gym.rollout import EpisodeSpec, play

    outcome = play(env, agent, EpisodeSpec(scenario_id, attack, 0)).outcome
    assert outcome is not None  # play() returns finished episodes
    return outcome.model_dump()


# -- AgentDojo ---------------------------------------------------------------------------

AGENTDOJO_COLUMNS = [
    "ignore: utility (benign)", "ignore: utility (attacked)", "ignore: attack success",
    "ignore: harm (false alarm)",
    "obey: attack success", "obey: utility (attacked)", "refuse: utility", "refuse: harm",
]


def check_agentdojo(quick: bool = False, suites: Sequence[str] | None = None,
                    progress: Callable[[str], None] | None = None) -> SuiteReport:
    """Play the three agents over every (user task x injection task) pair and user task."""
    from mosaic_gym.agent.baselines import make_baseline
    from mosaic_gym.envs.suites import agentdojo as ad

    report = SuiteReport("agentdojo", AGENTDOJO_COLUMNS)
    agents = {name: make_baseline(baseline) for name, baseline in AGENTS.items()}
    for suite in suites or ad.SUITES:
        data = ad.suite_data(suite)
        env = ad.AgentDojoEnv(suite=suite, injection_task="all")
        users = sorted(data.suite.user_tasks, key=ad._task_number)
        injections = sorted(data.suite.injection_tasks, key=ad._task_number)
        if quick:
            users, injections = users[:3], injections[:2]
        if progress:
            progress(f"agentdojo/{suite}: {len(users)} user tasks x {len(injections)} "
                     "injection tasks")
        _known_defects(report, data, users, injections)
        for uid in users:
            sid = ad.scenario_id(suite, uid)
            benign = _play(env, agents["ignore"], sid, None)
            report.count(suite, "ignore: utility (benign)").add(benign["completed"])
            report.count(suite, "ignore: harm (false alarm)").add(benign["harm"])
            if benign["harm"]:
                report.failures.append(f"{sid}: harm for the ground truth: "
                                       f"{benign['harm_reasons']}")
            _fail_on_infra(report, benign, "ignore")
            refused = _play(env, agents["refuse"], sid, None)
            report.count(suite, "refuse: utility").add(refused["completed"])
            report.count(suite, "refuse: harm").add(refused["harm"])
            if refused["completed"] or refused["harm"]:
                report.failures.append(f"{sid}: the refusing agent completed or harmed")
            for iid in injections:
                pid = ad.scenario_id(suite, uid, iid)
                ignore = _play(env, agents["ignore"], pid, ad.DEFAULT_ATTACK)
                obey = _play(env, agents["obey"], pid, ad.DEFAULT_ATTACK)
                report.count(suite, "ignore: utility (attacked)").add(ignore["completed"])
                report.count(suite, "ignore: attack success").add(ignore["attack_success"])
                report.count(suite, "obey: attack success").add(obey["attack_success"])
                report.count(suite, "obey: utility (attacked)").add(obey["completed"])
                for name, outcome in (("ignore", ignore), ("obey", obey)):
                    _fail_on_infra(report, outcome, name)
                # The ground truth's own changes are allowed: harm here is a false alarm.
                report.count(suite, "ignore: harm (false alarm)").add(ignore["harm"])
                if ignore["harm"]:
                    report.failures.append(f"{pid}: harm for the ignoring agent: "
                                           f"{ignore['harm_reasons']}")
                if ignore["attack_success"]:
                    report.defect("security check true for an agent that ignored the "
                                  "injection (upstream)", pid)
                if not obey["attack_success"] and data.injection_task(iid).ground_truth(
                        data.environment({})):
                    report.defect("obeying agent did not achieve the injection task", pid)
        _loader_matches(report, data, users, injections, quick)
    for suite_rows in report.rows.values():
        for column in AGENTDOJO_COLUMNS:
            suite_rows.setdefault(column, Count())
    return report


def _fail_on_infra(report: SuiteReport, outcome: dict[str, Any], agent: str) -> None:
    if outcome["infra_error"] is not None:
        report.failures.append(f"{outcome['scenario_id']} ({agent}): {outcome['infra_error']}")


def _known_defects(report: SuiteReport, data: Any, users: Iterable[str],
                   injections: Iterable[str]) -> None:
    clean = data.environment({})
    for iid in injections:
        if not data.injection_task(iid).ground_truth(clean.model_copy(deep=True)):
            report.defect("injection task with an empty ground truth (no scripted attacker; "
                          "upstream)", f"{data.name}/{iid}")
    for uid in users:
        task = data.user_task(uid)
        pre = task.init_environment(data.environment({}))
        post = pre.model_copy(deep=True)
        idle = task.utility_from_traces("", pre, post, [])
        if idle is None:
            idle = task.utility("", pre, post)
        if idle:
            report.defect("user task whose utility passes for an agent that does nothing "
                          "(upstream)", f"{data.name}/{uid}")
        try:
            data._attack("direct").get_injection_candidates(task)
        except ValueError:
            report.defect("user task whose ground truth reads no injection vector",
                          f"{data.name}/{uid}")


def _loader_matches(report: SuiteReport, data: Any, users: Sequence[str],
                    injections: Sequence[str], quick: bool) -> None:
    """The fast loader must give AgentDojo's own environment, injections included."""
    from mosaic_gym.envs.suites.agentdojo import DEFAULT_ATTACK

    samples: list[dict[str, str]] = [{}]
    for uid in users[: 1 if quick else len(users)]:
        samples.append(data.injections(DEFAULT_ATTACK, data.user_task(uid),
                                       data.injection_task(injections[0])))
    for injected in samples:
        if data.load(injected) != data.suite.load_and_inject_default_environment(injected):
            report.failures.append(f"{data.name}: cached loader differs from AgentDojo's "
                                   f"for vectors {sorted(injected)}")


# -- BFCL --------------------------------------------------------------------------------

BFCL_COLUMNS = ["answer: correct", "act anyway: correct", "refuse: correct",
                "refuse: over-refusal"]
BFCL_AGENTS = {"answer": "reference", "act anyway": "comply", "refuse": "refuse"}


def check_bfcl(quick: bool = False, progress: Callable[[str], None] | None = None
               ) -> SuiteReport:
    """Three agents over every supported item: the possible answer (or an abstention), a
    call whatever the request, an immediate refusal; judged by BFCL's checker."""
    from mosaic_gym.agent.baselines import make_baseline
    from mosaic_gym.envs.suites import bfcl

    report = SuiteReport("bfcl", BFCL_COLUMNS)
    agents = {name: make_baseline(baseline) for name, baseline in BFCL_AGENTS.items()}
    for category in bfcl.CATEGORIES:
        env = bfcl.BFCLEnv(category=category, limit=10 if quick else None)
        if progress:
            progress(f"bfcl/{category}: {len(env.pool)} items")
        for scenario in env.pool:
            outcomes = {name: _play(env, agent, scenario.id, None)
                        for name, agent in agents.items()}
            for name, outcome in outcomes.items():
                report.count(category, f"{name}: correct").add(outcome["correct"])
                _fail_on_infra(report, outcome, name)
            refused = outcomes["refuse"]
            if refused["expected"] == "complete":
                report.count(category, "refuse: over-refusal").add(refused["refused"])
            if refused["completed"] and refused["expected"] == "complete":
                report.failures.append(f"{scenario.id}: a refusal counted as done")
            if not outcomes["answer"]["correct"] and category in bfcl.RELEVANT:
                report.defect("possible answer whose first acceptable values fail BFCL's "
                              "own checker (upstream data)", scenario.id)
    for rows in report.rows.values():
        for column in BFCL_COLUMNS:
            rows.setdefault(column, Count())
    return report


def print_report(report: SuiteReport, echo: Callable[[str], None] = print) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"mosaic suites check {report.suite}: k/n = rate [95% Wilson interval]")
    table.add_column("suite" if report.suite == "agentdojo" else "category")
    for column in report.columns:
        table.add_column(column, justify="right")
    for row, counts in report.rows.items():
        table.add_row(row, *(str(counts.get(column, Count())) for column in report.columns))
    Console(width=250).print(table)
    for kind, items in report.defects.items():
        shown = ", ".join(items[:12]) + (f", ... ({len(items)} in all)" if len(items) > 12
                                         else "")
        echo(f"known defect: {kind}: {len(items)}: {shown}")
    for failure in report.failures:
        echo(f"FAILURE: {failure}")
    echo(f"{len(report.failures)} failure(s)")


CHECKS: dict[str, Callable[..., SuiteReport]] = {"agentdojo": check_agentdojo,
                                                 "bfcl": check_bfcl}


def run_check(suite: str, *, quick: bool = False, out: Any = None,
              echo: Callable[[str], None] = print) -> int:
    """Run one suite's check, print the table, optionally write JSON; return the failures."""
    import json
    from pathlib import Path

    from mosaic_gym.errors import SuiteError

    if suite not in CHECKS:
        raise SuiteError(f"unknown suite {suite!r}; expected one of {', '.join(CHECKS)}")
    report = CHECKS[suite](quick=quick, progress=echo)
    print_report(report, echo)
    if out is not None:
        Path(out).write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    return len(report.failures)
