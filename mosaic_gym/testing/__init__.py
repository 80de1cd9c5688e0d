"""Public tools for testing environment safety properties: strategies, invariants, a plugin.

* ``strategies``: Hypothesis strategies (``hostile`` and ``worlds`` hold some, re-exported);
* ``invariants``: checks that raise ``AssertionError`` with a counterexample (``episodes``
  holds the episode runner and the violation they share, re-exported);
* ``suite``: the invariant set over scenario files, as the pytest plugin and
  ``mosaic scenarios check --properties`` run it;
* ``plugin``: the pytest plugin, registered as the ``mosaic_gym`` ``pytest11`` entry point.

``GUIDE.md`` next to this file is the user's page.

Install with the ``testing`` extra (``pip install "mosaic-gym[testing]"``): it brings
Hypothesis and hypothesis-jsonschema. This ``__init__`` imports neither, so the plugin can be
discovered by pytest even where the extra is missing.
"""

from __future__ import annotations

__all__ = ["invariants", "strategies", "suite"]
