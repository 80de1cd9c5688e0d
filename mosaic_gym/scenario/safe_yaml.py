"""Bounded YAML: a scenario file is parsed in time and memory linear in its size.

PyYAML's ``SafeLoader`` runs no code, but it is not bounded: a 752-byte file of nested
aliases (the "billion laughs") expands into billions of nodes when constructed, deep
nesting recurses until ``RecursionError``, a 5,000-digit integer raises ``ValueError``
from ``int()``, and a repeated key silently replaces the first. Scenario files come from
anyone, so loading them goes through three passes, each linear:

1. **Tokens** (no recursion): the file size, the nesting depth and the number of
   aliases are counted before any node exists.
2. **Nodes**: the composed graph is walked once with a memo, so the size it *would*
   have with every alias expanded is known without expanding it; duplicate keys,
   oversized numbers and ``.nan``/``.inf`` are refused here, with their line.
3. **Construction** happens only when the expanded size is within
   :data:`MAX_NODES`.

Every refusal is a :class:`~mosaic_gym.errors.ScenarioError` naming the file and line.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from mosaic_gym.errors import ScenarioError

#: Bytes of one scenario file (the library's largest is under 4 kB).
MAX_FILE_BYTES = 1024 * 1024
#: Nesting of mappings and sequences.
MAX_DEPTH = 48
#: Alias references (``*name``) in one file.
MAX_ALIASES = 256
#: Nodes of the document with every alias expanded (keys and values counted).
MAX_NODES = 100_000
#: Characters of a plain scalar that reads as a number.
MAX_NUMBER_CHARS = 64

_OPEN = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken,
         yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
_NUMERIC = re.compile(r"[-+]?(\.?[0-9][0-9_.:]*|0[xob][0-9a-fA-F_]+)([eE][-+]?[0-9]+)?")
_NOT_FINITE = {".nan", ".inf", "-.inf", "+.inf"}
_MERGE = "tag:yaml.org,2002:merge"


def _line(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


def _check_tokens(text: str, source: str) -> None:
    """Depth and alias count from the token stream (PyYAML's scanner is iterative)."""
    depth = aliases = 0
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_token():
            token = loader.get_token()
            if isinstance(token, _OPEN):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ScenarioError(f"YAML nested more than {MAX_DEPTH} levels deep",
                                        file=source, line=_line(token.start_mark))
            elif isinstance(token, _CLOSE):
                depth -= 1
            elif isinstance(token, yaml.AliasToken):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise ScenarioError(f"more than {MAX_ALIASES} YAML aliases",
                                        file=source, line=_line(token.start_mark))
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Expanded size, duplicate keys and number scalars, in one memoised walk."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    # Post-order without recursion: (node, children pushed yet?).
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            _check_scalar(node, source)
            sizes[id(node)] = 1
            continue
        children = _children(node)
        if not expanded:
            if id(node) in visiting:  # reached again below itself: a cycle
                raise ScenarioError("recursive YAML alias", file=source,
                                    line=_line(node.start_mark))
            visiting.add(id(node))
            if isinstance(node, yaml.MappingNode):
                _check_keys(node, source)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        visiting.discard(id(node))
        size = 1 + sum(sizes[id(child)] for child in children)
        if size > MAX_NODES:
            raise ScenarioError(f"YAML expands to more than {MAX_NODES} nodes "
                                f"(aliases inside aliases?)", file=source,
                                line=_line(node.start_mark))
        sizes[id(node)] = size


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_keys(node: yaml.MappingNode, source: str) -> None:
    seen: dict[str, int | None] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE:
            continue
        line = _line(key.start_mark)
        if key.value in seen:
            raise ScenarioError(f"duplicate key {key.value!r} (first on line {seen[key.value]})",
                                file=source, line=line, field=str(key.value))
        seen[key.value] = line


def _check_scalar(node: yaml.ScalarNode, source: str) -> None:
    if node.style is not None:  # quoted: a string, whatever it looks like
        return
    value = node.value
    if value.lower() in _NOT_FINITE or node.value in (".NaN", ".NAN", ".Inf", ".INF"):
        raise ScenarioError(f"{value!r} is not a finite number", file=source,
                            line=_line(node.start_mark))
    if len(value) > MAX_NUMBER_CHARS and _NUMERIC.fullmatch(value):
        raise ScenarioError(f"number of {len(value)} characters (at most {MAX_NUMBER_CHARS})",
                            file=source, line=_line(node.start_mark))


def load_bounded(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """Parse ``text`` into data and its node tree, within the bounds above.

    Raises:
        ScenarioError: too big, too deep, too many aliases, an alias bomb, a duplicate
            key, a non-finite or oversized number, or invalid YAML.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise ScenarioError(f"file of {size} bytes (at most {MAX_FILE_BYTES})", file=source)
    try:
        _check_tokens(text, source)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, None
            _check_nodes(node, source)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ScenarioError(f"invalid YAML: {exc.problem or exc}", file=source,
                            line=_line(mark)) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"invalid YAML: {exc}", file=source) from None
    except (ValueError, OverflowError, RecursionError, TypeError) as exc:
        # Constructors raise these for values the checks above let through
        # (a timestamp out of range, an unhashable key).
        raise ScenarioError(f"invalid YAML value: {type(exc).__name__}: {exc}",
                            file=source) from None
    return data, node
