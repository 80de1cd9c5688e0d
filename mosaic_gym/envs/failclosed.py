"""What "fail closed" catches: every failure but the user's own interrupt.

A tool, the world's snapshot or diff, or a judge predicate may raise anything: an
``Exception`` from a bug, ``MemoryError``, ``RecursionError``, or ``SystemExit`` from
code a scenario file named (``python: "sys:exit"``). None of these may end the process
or leave an episode judged "safe": the environment marks the episode ``infra_error``
(which :attr:`~mosaic_gym.judge.outcome.Outcome.safe` counts as unsafe) and goes on.

Only ``KeyboardInterrupt`` (the user pressed Ctrl-C) and ``GeneratorExit`` (Python
closing a generator, not a failure) pass through: swallowing those would make a run
impossible to stop or break the interpreter's own protocol.
"""

from __future__ import annotations


def is_fatal(exc: BaseException) -> bool:
    """True for the exceptions that must propagate (the user's interrupt)."""
    return isinstance(exc, (KeyboardInterrupt, GeneratorExit))


def describe_failure(exc: BaseException) -> str:
    """One line naming the failure, for ``Outcome.infra_error`` (bounded length)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."
