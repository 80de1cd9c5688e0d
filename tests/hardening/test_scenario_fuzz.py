"""Issue 10 item 4: loading a mutated library file succeeds or raises ScenarioError.

Hypothesis takes real scenario files and mutates their text (cut, duplicate, swap and
replace lines; insert YAML syntax, aliases, tags, huge numbers, deep nesting, Faker
calls and placeholders). Whatever comes out, ``load_file`` must either return
variants or raise :class:`ScenarioError`: no other exception, no hang and no memory
blow-up. Each example runs under a wall-clock alarm and ``tracemalloc``; both bounds
are liveness guards, far above what a bounded load needs.
"""

from __future__ import annotations

import signal
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosaic_gym.errors import ScenarioError
from mosaic_gym.scenario.loader import load_file

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
FILES = sorted(LIBRARY.rglob("*.yaml"))
ALARM_S = 20
PEAK_BYTES = 256 * 1024 * 1024

SNIPPETS = [
    "&a", "*a", "&a [x, x, x]", "b: [*a, *a, *a, *a]", "{", "}", "[", "]", ": ", "- ",
    "!!python/object/apply:os.system ['true']", "!!binary AAAA", ".nan", "-.inf",
    "9" * 5000, "0x" + "f" * 300, "{{ missing }}", "{{injection}}", "\t", "'", '"',
    "{faker: add_provider, args: {provider: x}}", "{faker: pystr, args: {max_chars: 99999999}}",
    "{python: \"sys:exit\"}", "[" * 400, "{a: " * 200, "<<: *a", "? complex\n: key",
    "%YAML 1.1", "---", "...", "\x00", "\ud800", "tools: [nope]", "strategies: [nope]",
]


#: Values that keep a line well-formed YAML but are hostile to what reads them.
VALUES = [
    "9" * 5000, "-" + "1" * 4400, ".nan", ".inf", "1e999", "[" * 60 + "]" * 60,
    "{faker: add_provider, args: {provider: x}}", "{faker: seed_instance, args: {seed: 1}}",
    "{faker: pystr, args: {max_chars: 100000000}}", "{faker: password, args: {length: 99999}}",
    '{python: "sys:exit"}', '"{{ nope }}"', "!!timestamp 99999-99-99", "!!python/name:os.system",
    "&x [1, 2]", "*nowhere", "[*nowhere]", "null", "~", "[]", "{}", "true", "0o777",
    "2001-13-45", '"\\ud800"', "'{{injection}}{{injection}}'", "[run_shell, no_such_tool]",
]
#: Whole top-level entries (an alias bomb, duplicate keys, unknown fields).
TOP_LEVEL = [
    "bomb: &a [x, x, x, x, x, x, x, x]\nb2: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    "b3: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nb4: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
    "b5: &e [*d, *d, *d, *d, *d, *d, *d, *d]\nb6: &f [*e, *e, *e, *e, *e, *e, *e, *e]\n"
    "b7: [*f, *f, *f, *f, *f, *f, *f, *f]",
    "id: duplicated", "tools: [no_such_tool]", "max_steps: " + "9" * 5000,
    "variables: {v: {faker: add_provider, args: {provider: x}}}",
    "deep: " + "[" * 3000 + "]" * 3000,
]


class Alarm(Exception):
    pass


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(FILES)).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [""]
        where = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["insert", "delete", "duplicate", "swap", "replace",
                                       "splice", "value", "value", "append"]))
        if action == "insert":
            indent = " " * draw(st.integers(0, 6))
            lines.insert(where, indent + draw(st.sampled_from(SNIPPETS)) + "\n")
        elif action == "delete":
            del lines[where]
        elif action == "duplicate":
            lines.insert(where, lines[where])
        elif action == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[where], lines[other] = lines[other], lines[where]
        elif action == "replace":
            line = lines[where]
            cut = draw(st.integers(0, len(line)))
            lines[where] = line[:cut] + draw(st.sampled_from(SNIPPETS)) + line[cut:]
        elif action == "value":
            # Keep the structure, change one value: what reaches the constructors.
            keyed = [i for i, line in enumerate(lines) if ": " in line]
            if keyed:
                index = keyed[where % len(keyed)]
                key = lines[index].split(": ", 1)[0]
                lines[index] = key + ": " + draw(st.sampled_from(VALUES)) + "\n"
        elif action == "append":
            lines.append(draw(st.sampled_from(TOP_LEVEL)) + "\n")
        else:
            lines[where] = lines[where] * draw(st.integers(2, 50))
    return "".join(lines)


def _on_alarm(signum: int, frame: object) -> None:
    raise Alarm(f"loading took longer than {ALARM_S} s")


@settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture])
@given(text=mutated())
def test_mutated_library_file_loads_or_raises_scenario_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mutated.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    tracemalloc.start()
    signal.alarm(ALARM_S)
    try:
        try:
            load_file(path)
        except ScenarioError as error:
            assert error.file == str(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        signal.alarm(0)
        tracemalloc.stop()
        signal.signal(signal.SIGALRM, previous)
    assert peak < PEAK_BYTES, f"peak {peak} bytes"
