"""Command substitution for the fake shell: ``$(...)`` and backquotes.

The lexer keeps a substitution's source as one segment of its word (kind ``cmd``, or
``dqcmd`` inside double quotes); expansion runs it here in a child shell, as ``sh``
runs it in a subshell: it shares the parent's virtual clock (so it costs what its
commands cost), starts from copies of the parent's variables and working directory
(changes inside never leak out), reads no standard input, and counts towards the
nesting depth of ``sh -c``/``eval`` (:data:`~mosaic_gym.sandbox.fake.shell.streams.MAX_DEPTH`).

Its output, trailing newlines removed, is bounded like any expansion
(:data:`~mosaic_gym.sandbox.fake.shell.limits.MAX_EXPANSION_CHARS`), while it is written:
``$(seq 1 100000000)`` stops at that bound, not at the much larger stream bound; its
standard error
goes to the standard error of the command being expanded, and its status becomes
``$?`` for a command made only of assignments (``x=$(false)`` gives 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mosaic_gym.sandbox.fake.shell.limits import MAX_EXPANSION_CHARS, check_size, limit
from mosaic_gym.sandbox.fake.shell.streams import MAX_DEPTH, MAX_STREAM_BYTES, StreamIO, decode

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell


def substitute(shell: Shell, source: str) -> str:
    """The output of ``source`` run in a child of ``shell``, trailing newlines removed."""
    if shell.depth >= MAX_DEPTH:
        raise limit(f"command substitution nested more than {MAX_DEPTH} deep")
    child = type(shell)(shell.sandbox, timeout=0.0, output_cap=shell.output_cap, parent=shell)
    out, err = bytearray(), bytearray()
    capped = StreamIO(shell.budget, b"", out, err, cap=MAX_EXPANSION_CHARS)
    status = child.run_source(source, capped)
    shell.substitution_status = status
    if len(shell.pending_err) + len(err) > MAX_STREAM_BYTES:
        raise limit(f"error output exceeds {MAX_STREAM_BYTES} bytes")
    shell.pending_err += err
    text = decode(bytes(out)).rstrip("\n")
    check_size("command substitution", len(text), MAX_EXPANSION_CHARS)
    return text
