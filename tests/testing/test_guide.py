"""GUIDE.md cannot drift: its examples are the files CI runs, its class table is the
registry's, and it documents every public checker and strategy."""

from __future__ import annotations

import re
from pathlib import Path

from mosaic_gym.testing import invariants, strategies
from mosaic_gym.tools import standard_tools

PACKAGE = Path(__file__).resolve().parents[2] / "mosaic_gym" / "testing"
GUIDE = (PACKAGE / "GUIDE.md").read_text(encoding="utf-8")
EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```python\n(.*?)```\n", re.S)


def test_every_example_file_is_on_the_page_verbatim():
    shown = dict(EXAMPLE.findall(GUIDE))
    files = sorted(p.name for p in (PACKAGE / "examples").glob("test_*.py"))
    assert sorted(shown) == files and len(files) == 4  # one per invariant family
    for name in files:
        assert shown[name] == (PACKAGE / "examples" / name).read_text(encoding="utf-8"), name


def test_the_examples_import_only_the_public_testing_api():
    for path in (PACKAGE / "examples").glob("test_*.py"):
        imports = re.findall(r"^\s*(?:from|import) (\S+)", path.read_text(), re.M)
        private = [name for name in imports
                   if name.startswith("mosaic_gym") and not name.startswith("mosaic_gym.testing")]
        assert private == [], (path.name, private)


def test_the_class_table_is_the_registry():
    rows = dict(re.findall(r"^\| `(\w+)` \| `(\w+)` \|", GUIDE, re.M))
    assert rows == {name: tool.effect for name, tool in standard_tools().items()}


def test_every_public_checker_and_strategy_is_documented():
    names = [n for n in (*invariants.__all__, *strategies.__all__)
             if not n[0].isupper() or n in ("FAULTS", "ENCODINGS", "HOSTILE_FAMILIES")]
    missing = [n for n in names if f"`{n}" not in GUIDE]
    assert missing == []
