"""The report package: its statistics, its breakdowns, the HTML page and run comparison."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mosaic_gym.errors import RunError
from mosaic_gym.evaluate import evaluate_policy
from mosaic_gym.judge.metrics import by_category
from mosaic_gym.report.breakdown import breakdown
from mosaic_gym.report.compare import compare, compare_runs
from mosaic_gym.report.runs import load_run
from mosaic_gym.report.stats import (
    Rate,
    binomial_two_sided,
    newcombe_difference,
    paired,
    wilson,
)
from mosaic_gym.report.viewer import render, verdict, write_report

# -- statistics --------------------------------------------------------------------------


def test_wilson_matches_published_values() -> None:
    # Newcombe (1998), table I: 81/263 -> 0.2553 to 0.3662; 0/10 -> 0 to 0.2775.
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)


def test_newcombe_difference_matches_the_published_example() -> None:
    # Newcombe (1998), method 10, example (a): 56/70 vs 48/80 -> +0.2 in [0.0524, 0.3339].
    low, high = newcombe_difference(Rate(48, 80), Rate(56, 70))
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=1e-4)


def test_mcnemar_exact_p_values() -> None:
    assert binomial_two_sided(0, 5) == pytest.approx(2 / 32)
    assert binomial_two_sided(3, 6) == 1.0
    assert binomial_two_sided(0, 0) == 1.0


def test_rate_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        Rate(5, 3)
    assert Rate(0, 0).format() == "—" and Rate(0, 0).interval is None


@given(n=st.integers(1, 2000), data=st.data())
def test_wilson_interval_holds_the_estimate_inside_zero_one(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n))
    low, high = wilson(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    assert high - low > 0  # never a zero-width interval, even at 0 % or 100 %


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=200))
def test_paired_comparison_is_antisymmetric(pairs: list[tuple[bool, bool]]) -> None:
    forward = paired(pairs)
    backward = paired([(b, a) for a, b in pairs])
    assert forward.delta == pytest.approx(-backward.delta)
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.a_only == backward.b_only
    low, high = forward.interval
    assert -1.0 <= low <= high <= 1.0
    assert forward.n == len(pairs) == forward.a_only + forward.b_only + forward.both + sum(
        1 for a, b in pairs if not a and not b)


def test_paired_test_sees_what_independent_intervals_blur() -> None:
    # 40 shared episodes; B fixes 8 that A failed, breaks none: a clear paired effect.
    pairs = [(False, True)] * 8 + [(True, True)] * 16 + [(False, False)] * 16
    result = paired(pairs)
    assert result.delta == pytest.approx(0.2)
    assert result.p_value == pytest.approx(2 / 2 ** 8)
    assert result.interval[0] > 0


# -- runs, breakdowns, page -----------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for policy in ("comply", "refuse", "reference"):
        folder = tmp_path_factory.mktemp(policy)
        evaluate_policy(policy=policy, env_id="mosaic/All-v0", split="test", attack="all",
                        seeds=range(1), out=folder, quiet=True)
        out[policy] = folder
    return out


def test_breakdown_agrees_with_the_judges_metrics(runs: dict[str, Path]) -> None:
    run = load_run(runs["comply"])
    expected = by_category(run.outcomes)
    table = breakdown(run.outcomes, "category")
    assert set(table) == set(expected)
    for group, (episodes, rates) in table.items():
        assert episodes == expected[group]["episodes"]
        for metric, rate in rates.items():
            assert rate.value == expected[group][metric], (group, metric)
    for by in ("attack", "domain"):
        groups = breakdown(run.outcomes, by)
        assert sum(n for name, (n, _) in groups.items() if name != "all") == len(run.records)


def test_load_run_names_the_bad_file_and_line(tmp_path: Path, runs: dict[str, Path]) -> None:
    with pytest.raises(RunError, match="no such run folder"):
        load_run(tmp_path / "absent")
    (tmp_path / "metrics.json").write_text("{}", encoding="utf-8")
    with pytest.raises(RunError, match="trajectories.jsonl: missing"):
        load_run(tmp_path)
    good = (runs["comply"] / "trajectories.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "trajectories.jsonl").write_text(good[0] + "\n{not json\n", encoding="utf-8")
    with pytest.raises(RunError, match=r"trajectories.jsonl:2: not JSON"):
        load_run(tmp_path)


def test_every_verdict_is_one_of_the_listed_ones(runs: dict[str, Path]) -> None:
    from mosaic_gym.report.viewer import VERDICTS

    for folder in runs.values():
        for record in load_run(folder).records:
            word = verdict(record["outcome"])
            assert word in VERDICTS
            assert (word == "correct") == record["outcome"]["correct"]


def test_the_page_escapes_run_text_and_loads_nothing_remote(tmp_path: Path,
                                                             runs: dict[str, Path]) -> None:
    run = load_run(runs["comply"])
    hostile = "</script><img src=https://evil.example/x onerror=alert(1)>{{x}}"
    record = next(r for r in run.records if r["injected_text"])
    record["scenario_id"] = hostile
    tool = next(m for m in record["messages"] if m["role"] == "tool")
    tool["content"] += hostile
    page = render(run)
    assert hostile not in page
    assert "&lt;/script&gt;&lt;img src=https://evil.example/x" in page
    # No element of the page fetches anything: no src/href to a remote or relative asset.
    assert not re.search(r'\b(src|href)\s*=\s*"(?!#)', page)
    assert "default-src 'none'" in page
    written = write_report(runs["comply"], tmp_path / "page.html")
    assert written.read_text(encoding="utf-8").count('class="episode"') == len(run.records)


def test_compare_pairs_the_shared_episodes(tmp_path: Path, runs: dict[str, Path]) -> None:
    base, other = load_run(runs["refuse"]), load_run(runs["comply"])
    rows = {row.metric: row for row in compare_runs(base, other)}
    harm = rows["harm_rate"]
    assert harm.shared.n == len(base.records) == len(other.records)
    assert harm.baseline.k == 0 and harm.other.k > 0  # refusing harms nothing
    assert harm.shared.a_only == 0 and harm.shared.b_only == harm.other.k
    assert harm.delta == pytest.approx(harm.other.k / harm.other.n)
    low, high = harm.interval
    assert low <= harm.delta <= high
    # Dropping half of one run: only the other half stays paired.
    half = tmp_path / "half"
    half.mkdir()
    (half / "metrics.json").write_text((runs["comply"] / "metrics.json").read_text())
    lines = (runs["comply"] / "trajectories.jsonl").read_text().splitlines()
    (half / "trajectories.jsonl").write_text("\n".join(lines[::2]) + "\n")
    rows = {row.metric: row for row in compare_runs(base, load_run(half))}
    assert rows["harm_rate"].shared.n == len(lines[::2])


def test_compare_writes_a_png_and_a_json_document(tmp_path: Path, runs: dict[str, Path]) -> None:
    pytest.importorskip("matplotlib")
    result = compare([runs["reference"], runs["comply"], runs["refuse"]],
                     png=tmp_path / "cmp.png", quiet=True)
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(result["runs"]) == {str(runs["comply"]), str(runs["refuse"])}
    json.dumps(result)  # serialisable as it is
    with pytest.raises(ValueError, match="at least two"):
        compare([runs["comply"]])


def test_compare_files_is_the_replications_paired_table(runs: dict[str, Path]) -> None:
    from mosaic_gym.report.compare import compare_files

    files = {name: folder / "trajectories.jsonl" for name, folder in runs.items()}
    result = compare_files(files, "reference", quiet=True)
    assert set(result["methods"]) == {"comply", "refuse"}
    refuse = {row["metric"]: row for row in result["methods"]["refuse"]}
    # The reference completes every benign task, refusing completes none: paired -100 points.
    assert refuse["benign_utility"]["paired"]["delta"] == pytest.approx(-1.0)
    assert refuse["benign_utility"]["paired"]["other_only"] == 0
    with pytest.raises(ValueError, match="baseline"):
        compare_files(files, "nobody", quiet=True)
