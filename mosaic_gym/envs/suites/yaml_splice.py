"""Re-parse only the part of a YAML template that an injection changes.

AgentDojo builds an injected environment by ``str.format``-ing the whole environment YAML
with the injection texts and parsing the result (workspace: about 54 kB, some 60 ms with
libyaml). An injection usually sits in one or two list items (an email, a calendar event, a
file), so :class:`SplicedTemplate` parses the template once with the default texts and, for a
new set of injections, formats and parses only the list items whose placeholders changed,
then puts them into a copy of the default tree (only the containers on the path are copied).

The result equals the full splice, or the full splice is done instead:

* an item is spliced only if the template, formatted with the defaults, gives the very
  element that the full parse has at that place (checked once, with a sentinel text per
  placeholder to find the place);
* an injected item is accepted only if its YAML event stream has the same shape as the
  default item's (same mappings, sequences and scalar count): the injected text changed
  scalar values and nothing else. A payload that would add keys, items or break the quoting
  makes :meth:`SplicedTemplate.load` return ``None``, and the caller parses the whole text,
  so even AgentDojo's own failures (a payload that breaks its YAML) are reproduced.

Within an item the text is the same characters as in the whole document, dedented as a block
(relative indentation kept), and the item ends at the first line indented no deeper than its
dash, so a structurally identical item parses to the same value there as here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_DASH = re.compile(r"( *)- ")
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _item_span(lines: list[str], index: int) -> tuple[int, int, int] | None:
    """(first line, end line, dash indent) of the innermost block-sequence item holding
    line ``index``, or None when the line is in no such item."""
    deepest = 1 << 30
    for j in range(index, -1, -1):
        line = lines[j]
        if not line.strip():
            continue
        dash = _DASH.match(line)
        if dash is not None and len(dash.group(1)) < deepest:
            start, depth = j, len(dash.group(1))
            end = index + 1
            while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > depth):
                end += 1
            return start, end, depth
        deepest = min(deepest, _indent(line))
        if deepest == 0:
            return None
    return None


def _shape(events: list[Any]) -> tuple[str, ...]:
    return tuple(type(event).__name__ for event in events)


def _find(tree: Any, wanted: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of the list elements of ``tree`` equal to ``wanted``."""
    found: list[tuple[Any, ...]] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _find(value, wanted, (*path, key))
    elif isinstance(tree, list):
        for position, value in enumerate(tree):
            if value == wanted:
                found.append((*path, position))
            else:
                found += _find(value, wanted, (*path, position))
    return found


def _set(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``tree`` with ``value`` at ``path``; only the containers on the path copied."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(tree) if isinstance(tree, dict) else list(tree)
    copy[head] = _set(tree[head], rest, value)
    return copy


class _Item:
    def __init__(self, text: str, path: tuple[Any, ...], fields: frozenset[str],
                 shape: tuple[str, ...]) -> None:
        self.text, self.path, self.fields, self.shape = text, path, fields, shape


class SplicedTemplate:
    """A YAML template with ``{name}`` placeholders, parsed once (see the module docstring).

    ``loader`` is a PyYAML loader class (libyaml's ``CSafeLoader`` when available). Fields
    that are not in list items, or whose items fail the once-only check, are left to the
    full splice: :meth:`load` returns ``None`` for injections that touch them.
    """

    def __init__(self, text: str, defaults: Mapping[str, str], loader: Any) -> None:
        import yaml

        self._yaml, self._loader = yaml, loader
        self.defaults = dict(defaults)
        self.base = yaml.load(text.format(**self.defaults), Loader=loader)
        sentinels = {name: f"MOSAICSLOT{number}X" for number, name in enumerate(self.defaults)}
        probe = yaml.load(text.format(**sentinels), Loader=loader)
        lines = text.splitlines(keepends=True)
        spans: dict[tuple[int, int, int], set[str]] = {}
        self.unspliced: set[str] = set()
        for index, line in enumerate(lines):
            names = {m.group(1) for m in _FIELD.finditer(line)} & set(self.defaults)
            if not names:
                continue
            span = _item_span(lines, index)
            if span is None:
                self.unspliced |= names
            else:
                spans.setdefault(span, set()).update(names)
        self.items: dict[str, list[_Item]] = {}
        for (start, end, depth), names in spans.items():
            chunk = "".join(line[depth:] if _indent(line) >= depth else line.lstrip(" ")
                            for line in lines[start:end])
            item = self._check(chunk, names, sentinels, probe)
            if item is None:
                self.unspliced |= names
                continue
            for name in names:
                self.items.setdefault(name, []).append(item)
        # A name with one use outside a checked item is always fully spliced.
        for name in self.unspliced:
            self.items.pop(name, None)

    def _check(self, chunk: str, names: set[str], sentinels: Mapping[str, str],
               probe: Any) -> _Item | None:
        yaml, loader = self._yaml, self._loader
        try:
            marked = yaml.load(chunk.format(**sentinels), Loader=loader)
            default_text = chunk.format(**self.defaults)
            default = yaml.load(default_text, Loader=loader)
            shape = _shape(list(yaml.parse(default_text, Loader=loader)))
        except (yaml.YAMLError, KeyError, IndexError, ValueError):
            return None
        if not (isinstance(marked, list) and len(marked) == 1
                and isinstance(default, list) and len(default) == 1):
            return None
        paths = _find(probe, marked[0])
        if len(paths) != 1 or _get(self.base, paths[0]) != default[0]:
            return None
        return _Item(chunk, paths[0], frozenset(names), shape)

    def load(self, injections: Mapping[str, str]) -> Any | None:
        """The parsed tree with ``injections`` spliced in, or None: do the full splice."""
        changed = {name for name, value in injections.items()
                   if value != self.defaults.get(name)}
        if changed & self.unspliced or changed - set(self.items):
            return None
        values = dict(self.defaults, **injections)
        tree = self.base
        done: set[int] = set()
        yaml, loader = self._yaml, self._loader
        for name in sorted(changed):
            for item in self.items[name]:
                if id(item) in done:
                    continue
                done.add(id(item))
                text = item.text.format(**values)
                try:
                    if _shape(list(yaml.parse(text, Loader=loader))) != item.shape:
                        return None
                    parsed = yaml.load(text, Loader=loader)
                except yaml.YAMLError:
                    return None
                tree = _set(tree, item.path, parsed[0])
        return tree


def _get(tree: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree
