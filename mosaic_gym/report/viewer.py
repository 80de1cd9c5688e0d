"""``mosaic view RUN_DIR``: one self-contained HTML file to read a run.

Design notes:

* **One file, no server, no network.** Everything is rendered here, in Python, into
  ``RUN_DIR/report.html``: styles and a few lines of script are inline, nothing is fetched,
  so the file opens from disk (``file://``), from a CI artefact, or from a mail attachment.
  The page's Content-Security-Policy forbids every remote load, so a trace that quotes a URL
  or an ``<img>`` (attack payloads do) cannot make the browser reach out either.
* **Escaped once, at the edge.** Every text that came from a run (messages, tool output,
  attacker payloads, scenario ids) goes through :func:`html.escape` when it is written into
  the page; the script only shows and hides elements, it never inserts run text as HTML.
  A payload holding ``</script>`` is therefore just text.
* **Pre-rendered episodes.** Each episode is a hidden ``<section>``; the script filters the
  list and shows one section per ``#episode-N`` hash, so the browser's back button works and
  a link to one episode can be shared. Runs of a few thousand episodes stay a few MB.
* **Counts with every rate.** The tables are the judge's metrics per category, attack
  strategy and domain (:mod:`mosaic_gym.report.breakdown`), each cell "rate [95 % interval]
  (k/n)", computed from the trajectories; the page also shows the episode counts of
  ``metrics.json`` so a mismatch (a truncated trajectories file) is visible.
* **Why the verdict.** The verdict of an episode is explained from its outcome (refused at
  which step, which harm reasons, which leaks) and, where the scenario is found in the
  library, the predicates of its ``checks`` are printed beside it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mosaic_gym.judge.metrics import METRICS
from mosaic_gym.report.breakdown import breakdown
from mosaic_gym.report.runs import Run, load_run

#: Rows of the metric tables, in the order of ``mosaic eval``.
TABLE_METRICS = ["harm_rate", "refusal_rate_harmful", "attack_success_rate", "benign_utility",
                 "utility_under_attack", "over_refusal", "refusal_rate_attacked", "leak_rate",
                 "irreversible_rate", "correct_rate", "infra_error_rate"]

VERDICTS = ("correct", "attack succeeded", "leak", "harm", "over-refusal", "missed refusal",
            "incomplete", "infra error")


def verdict(outcome: Mapping[str, Any]) -> str:
    """One word for an episode, the most serious first (a leak beats an incomplete task)."""
    if outcome.get("infra_error"):
        return "infra error"
    if outcome.get("attack_success"):
        return "attack succeeded"
    if outcome.get("leaks"):
        return "leak"
    if outcome.get("harm"):
        return "harm"
    if outcome.get("correct"):
        return "correct"
    if outcome.get("expected") == "refuse":
        return "missed refusal"
    if outcome.get("refused"):
        return "over-refusal"
    return "incomplete"


def explain(outcome: Mapping[str, Any]) -> list[str]:
    """The facts of the outcome that decided the verdict, as sentences."""
    lines = [f"expected: {outcome.get('expected')}; ended by {outcome.get('termination')} "
             f"after {outcome.get('steps')} step(s)"]
    if outcome.get("infra_error"):
        lines.append(f"infra error (counted unsafe): {outcome['infra_error']}")
    if outcome.get("refused"):
        lines.append(f"refused at step {outcome.get('refusal_step')}")
    lines.append(f"utility predicate: {'held' if outcome.get('completed') else 'did not hold'}")
    for reason in outcome.get("harm_reasons") or []:
        lines.append(f"harm: {reason}")
    if outcome.get("attack") is not None:
        seen = outcome.get("injection_seen_step")
        held = "held" if outcome.get("attack_success") else "did not hold"
        lines.append(f"attack {outcome['attack']}: injection seen at step {seen}; attack "
                     f"success predicate {held}")
    for leak in outcome.get("leaks") or []:
        lines.append(f"leak of {leak.get('secret')} through {leak.get('channel')} to "
                     f"{leak.get('destination')} ({leak.get('encoding')}) "
                     f"at step {leak.get('step')}")
    if outcome.get("format_errors") or outcome.get("tool_errors"):
        lines.append(f"{outcome.get('format_errors', 0)} format error(s), "
                     f"{outcome.get('tool_errors', 0)} tool error(s)")
    return lines


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _checks_by_scenario(scenarios: Sequence[Path] | None) -> dict[str, dict[str, Any]]:
    """Scenario id -> its ``checks`` (for the verdict panel); empty if the library fails."""
    from mosaic_gym.errors import MosaicError
    from mosaic_gym.scenario.library import load_library

    try:
        variants = load_library(list(scenarios) if scenarios else None)
    except (MosaicError, OSError):
        return {}
    return {v.id: v.spec.checks.model_dump(exclude_none=True, by_alias=True) for v in variants}


def _rate_cell(rate: Any, group: str, metric: str) -> str:
    attributes = f'data-group="{_e(group)}" data-metric="{_e(metric)}" data-k="{rate.k}" ' \
                 f'data-n="{rate.n}"'
    if not rate.n:
        return f'<td {attributes} class="na">—</td>'
    low, high = rate.interval
    return (f'<td {attributes}><b>{100 * rate.value:.1f}%</b> '
            f'<span class="ci">[{100 * low:.1f}, {100 * high:.1f}]</span> '
            f'<span class="count">({rate.k}/{rate.n})</span></td>')


def _metrics_table(run: Run, by: str) -> str:
    table = breakdown(run.outcomes, by)
    head = "".join(f'<th>{_e(group)}</th>' for group in table)
    episodes = "".join(f'<td data-group="{_e(g)}" data-metric="episodes">{n}</td>'
                       for g, (n, _) in table.items())
    rows = [f'<tr><th>episodes</th>{episodes}</tr>']
    for metric in TABLE_METRICS:
        cells = "".join(_rate_cell(rates[metric], group, metric)
                        for group, (_, rates) in table.items())
        rows.append(f'<tr><th title="{_e(METRICS[metric][0])}">{_e(metric)}</th>{cells}</tr>')
    return (f'<h3>by {_e(by)}</h3><div class="scroll"><table class="metrics" data-by="{_e(by)}">'
            f'<tr><th>metric</th>{head}</tr>{"".join(rows)}</table></div>')


def _highlight(text: str, injected: str | None) -> str:
    """Escape ``text``, marking the attacker's text where it entered."""
    if injected:
        needle = injected.strip()
        start, end = text.find(needle), -1
        if start >= 0:
            end = start + len(needle)
        elif needle[:48] and text.find(needle[:48]) >= 0:
            # Reworded on the way in (wrapped into a page or a mail): mark from where its
            # opening words appear, as far as the payload is long.
            start = text.find(needle[:48])
            end = min(len(text), start + len(needle))
        if start >= 0:
            return (_e(text[:start]) + '<mark class="injected" title="injected text">'
                    + _e(text[start:end]) + "</mark>" + _e(text[end:]))
    return _e(text)


def _assistant(content: str) -> str:
    from mosaic_gym.protocol.format import parse_action

    parsed = parse_action(content)
    parts = []
    if parsed.plan is not None:
        parts.append(f'<div class="plan"><span class="tag">plan</span>{_e(parsed.plan)}</div>')
    if parsed.safety_check is not None:
        parts.append(f'<div class="safety"><span class="tag">safety check</span>'
                     f'{_e(parsed.safety_check)}</div>')
    else:
        parts.append('<div class="safety skipped"><span class="tag">safety check</span>'
                     'skipped</div>')
    if parsed.tool_call is not None:
        arguments = json.dumps(dict(parsed.tool_call.arguments), ensure_ascii=False, indent=1)
        label = "refusal" if parsed.kind == "refusal" else "tool call"
        parts.append(f'<div class="action {_e(parsed.kind)}"><span class="tag">{label}</span>'
                     f'<code>{_e(parsed.tool_call.name)}</code><pre>{_e(arguments)}</pre></div>')
    elif parsed.answer is not None:
        parts.append(f'<div class="action answer"><span class="tag">final answer</span>'
                     f'{_e(parsed.answer)}</div>')
    if parsed.error:
        parts.append(f'<div class="format-error"><span class="tag">format error</span>'
                     f'{_e(parsed.error)}</div>')
    parts.append(f'<details><summary>raw text</summary><pre>{_e(content)}</pre></details>')
    return "".join(parts)


def _ledger_table(ledger: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for entry in ledger:
        events = "<br>".join(f'{_e(ev.get("kind"))} <code>{_e(ev.get("target"))}</code> '
                             f'[{_e(ev.get("effect"))}] {_e(ev.get("detail") or "")}'
                             for ev in entry.get("events") or [])
        flags = " injected" if entry.get("injected") else ""
        rows.append(f'<tr class="ledger-row{flags}"><td>{_e(entry.get("step"))}</td>'
                    f'<td>{_e(entry.get("kind"))}</td><td>{_e(entry.get("tool") or "")}</td>'
                    f'<td>{_e(entry.get("declared_effect") or "")}</td><td>{events}</td>'
                    f'<td>{_e(entry.get("error") or "")}</td>'
                    f'<td>{"yes" if entry.get("injected") else ""}</td></tr>')
    return ('<table class="ledger"><tr><th>step</th><th>kind</th><th>tool</th>'
            '<th>declared effect</th><th>observed events</th><th>error</th><th>injected</th></tr>'
            + "".join(rows) + "</table>")


def _episode(index: int, record: Mapping[str, Any], checks: Mapping[str, Any] | None) -> str:
    outcome = record["outcome"]
    word = verdict(outcome)
    ledger = list(record.get("ledger") or [])
    injected_steps = {entry.get("step") for entry in ledger if entry.get("injected")}
    injected_text = record.get("injected_text")
    chat, step = [], 0
    for message in record.get("messages") or []:
        role, content = message.get("role"), str(message.get("content") or "")
        if role == "system":
            chat.append(f'<details class="msg system"><summary>system prompt</summary>'
                        f'<pre>{_e(content)}</pre></details>')
        elif role == "user":
            chat.append(f'<div class="msg user"><span class="who">user</span>{_e(content)}</div>')
        elif role == "assistant":
            step += 1
            chat.append(f'<div class="msg assistant" data-step="{step}"><span class="who">'
                        f'assistant · step {step}</span>{_assistant(content)}</div>')
        else:
            was_injected = step in injected_steps
            body = _highlight(content, injected_text if was_injected else None)
            badge = '<span class="badge inj">injection entered here</span>' if was_injected else ""
            chat.append(f'<div class="msg tool{" injected" if was_injected else ""}">'
                        f'<span class="who">{_e(message.get("name") or "tool")} → observation'
                        f'</span>{badge}<pre>{body}</pre></div>')
    leaks = "".join(f'<tr><td>{_e(x.get("secret"))}</td><td>{_e(x.get("channel"))}</td>'
                    f'<td>{_e(x.get("destination"))}</td><td>{_e(x.get("encoding"))}</td>'
                    f'<td>{_e(x.get("step"))}</td></tr>' for x in outcome.get("leaks") or [])
    leak_table = ('<table class="leaks"><tr><th>secret</th><th>channel</th><th>destination</th>'
                  f'<th>encoding</th><th>step</th></tr>{leaks}</table>' if leaks
                  else "<p>no secret left.</p>")
    reasons = "".join(f"<li>{_e(line)}</li>" for line in explain(outcome))
    predicates = (f'<details open><summary>the scenario\'s checks</summary><pre>'
                  f'{_e(json.dumps(checks, indent=1, ensure_ascii=False))}</pre></details>'
                  if checks else "")
    attack = record.get("attack") or "none"
    css = "v-" + _e(word.replace(" ", "-"))
    return f"""
<section class="episode" id="episode-{index}" hidden>
  <p><a href="#">← all episodes</a></p>
  <h2>{_e(record["scenario_id"])} <span class="verdict {css}">{_e(word)}</span></h2>
  <p class="meta">category {_e(record.get("category"))} · domain {_e(outcome.get("domain"))}
   · split {_e(record.get("split"))} · attack {_e(attack)} · seed {_e(record["seed"])}
   · policy {_e(record.get("policy", ""))}</p>
  <div class="columns">
    <div class="chat">{"".join(chat)}</div>
    <aside>
      <h3>verdict: {_e(word)}</h3><ul class="reasons">{reasons}</ul>{predicates}
      <h3>leaks</h3>{leak_table}
      <h3>ledger</h3>{_ledger_table(ledger)}
    </aside>
  </div>
</section>"""


def _episode_row(index: int, record: Mapping[str, Any]) -> str:
    outcome = record["outcome"]
    word = verdict(outcome)
    attack = record.get("attack") or "none"
    return (f'<tr class="ep" data-verdict="{_e(word)}" data-category="{_e(record.get("category"))}"'
            f' data-attack="{_e(attack)}" data-scenario="{_e(record["scenario_id"])}">'
            f'<td><a href="#episode-{index}">{_e(record["scenario_id"])}</a></td>'
            f'<td>{_e(record.get("category"))}</td><td>{_e(attack)}</td>'
            f'<td>{_e(record["seed"])}</td><td>{_e(outcome.get("steps"))}</td>'
            f'<td><span class="verdict v-{_e(word.replace(" ", "-"))}">{_e(word)}</span></td></tr>')


def _select(name: str, values: Sequence[str]) -> str:
    options = "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)
    return (f'<label>{name} <select id="f-{name}"><option value="">any</option>{options}'
            "</select></label>")


def render(run: Run, scenarios: Sequence[Path] | None = None) -> str:
    """The report page of ``run`` as one HTML string."""
    checks = _checks_by_scenario(scenarios)
    records = run.records
    declared = {group: int(values.get("episodes") or 0)
                for group, values in (run.metrics.get("metrics") or {}).items()}
    declared_text = ", ".join(f'<span data-declared="{_e(g)}">{_e(g)} {n}</span>'
                              for g, n in declared.items())
    categories = sorted({str(r.get("category")) for r in records})
    attacks = sorted({str(r.get("attack") or "none") for r in records})
    present = {verdict(r["outcome"]) for r in records}
    title = (f'{run.metrics.get("policy", run.path.name)} on {run.metrics.get("env", "?")} '
             f'(split={run.metrics.get("split", "?")}, attack={run.metrics.get("attack", "?")})')
    body = f"""
<header><h1>{_e(title)}</h1>
<p class="meta">{len(records)} episodes in trajectories.jsonl · metrics.json counts:
 {declared_text} · backend {_e(run.metrics.get("backend", "?"))}</p></header>
<main id="index">
<h2>metrics (rate [95 % Wilson interval] (k/n))</h2>
{_metrics_table(run, "category")}{_metrics_table(run, "attack")}{_metrics_table(run, "domain")}
<h2>episodes <span id="shown">{len(records)}</span> of {len(records)}</h2>
<div class="filters">{_select("verdict", [v for v in VERDICTS if v in present])}
{_select("category", categories)}{_select("attack", attacks)}
<label>scenario <input id="f-scenario" type="search" placeholder="substring"></label></div>
<table id="episodes"><tr><th>scenario</th><th>category</th><th>attack</th><th>seed</th>
<th>steps</th><th>verdict</th></tr>
{"".join(_episode_row(i, r) for i, r in enumerate(records))}
</table>
</main>
{"".join(_episode(i, r, checks.get(str(r["scenario_id"]))) for i, r in enumerate(records))}
"""
    return _PAGE.replace("{title}", _e(title)).replace("{body}", body)


def write_report(run_dir: Path | str, out: Path | str | None = None,
                 scenarios: Sequence[Path] | None = None) -> Path:
    """Write ``report.html`` for the run in ``run_dir`` (or to ``out``); return its path.

    Raises :class:`~mosaic_gym.errors.RunError` when the run folder is incomplete.
    """
    run = load_run(run_dir)
    target = Path(out) if out is not None else run.path / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(run, scenarios), encoding="utf-8")
    return target


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em 2em;color:#1d232a;background:#fafafa}
h1{font-size:1.4em}h2{font-size:1.2em;margin-top:1.4em}h3{font-size:1em;margin:1em 0 .3em}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #d5d9de;padding:3px 6px;
text-align:left;vertical-align:top}table.metrics td{text-align:right;white-space:nowrap}
.scroll{overflow-x:auto}.ci,.count{color:#667}.na{color:#aab}.meta{color:#556}
.filters{margin:.5em 0}.filters label{margin-right:1em}tr.ep:hover{background:#eef4ff}
.verdict{padding:1px 6px;border-radius:8px;font-size:.85em;background:#ddd}
.v-correct{background:#cdeccd}.v-attack-succeeded,.v-leak,.v-harm,.v-infra-error{background:#f7c6c6}
.v-over-refusal,.v-missed-refusal,.v-incomplete{background:#f8e3b5}
.columns{display:flex;gap:1.5em;align-items:flex-start}.chat{flex:3;min-width:0}
aside{flex:2;min-width:0;overflow-x:auto}
.msg{background:#fff;border:1px solid #d5d9de;border-radius:6px;
padding:6px 10px;margin:6px 0}.msg.user{background:#eef4ff}.msg.assistant{margin-left:2em}
.msg.tool{background:#f4f4f4}.msg.tool.injected{border-color:#d9534f}.who{display:block;
font-size:.8em;color:#667;margin-bottom:2px}.tag{font-size:.75em;text-transform:uppercase;
color:#fff;background:#778;border-radius:4px;padding:0 4px;margin-right:6px}
.safety .tag{background:#2e7d32}.safety.skipped{color:#999}
.safety.skipped .tag{background:#aaa}.refusal .tag{background:#b26a00}
.format-error .tag{background:#c62828}pre{white-space:pre-wrap;word-break:break-word;margin:2px 0}
mark.injected{background:#ffd0d0;outline:1px solid #d9534f}.badge.inj{color:#b00;font-weight:bold}
tr.ledger-row.injected{background:#fff0f0}
</style></head><body>
{body}
<script>
(function(){
  var rows=[].slice.call(document.querySelectorAll('tr.ep'));
  var keys=['verdict','category','attack'];
  function filter(){
    var want={};keys.forEach(function(k){want[k]=document.getElementById('f-'+k).value;});
    var text=document.getElementById('f-scenario').value.toLowerCase(),shown=0;
    rows.forEach(function(r){
      var ok=keys.every(function(k){return !want[k]||r.dataset[k]===want[k];})&&
        r.dataset.scenario.toLowerCase().indexOf(text)>=0;
      r.hidden=!ok;if(ok)shown++;});
    document.getElementById('shown').textContent=shown;
  }
  keys.concat(['scenario']).forEach(function(k){var el=document.getElementById('f-'+k);
    el.addEventListener('input',filter);el.addEventListener('change',filter);});
  function route(){
    var open=null,m=/^#episode-(\\d+)$/.exec(location.hash);
    [].forEach.call(document.querySelectorAll('section.episode'),function(s){s.hidden=true;});
    if(m)open=document.getElementById('episode-'+m[1]);
    document.getElementById('index').hidden=!!open;
    if(open){open.hidden=false;window.scrollTo(0,0);}
  }
  window.addEventListener('hashchange',route);route();
})();
</script></body></html>
"""
