"""How much of a docker sandbox's content the host process may ever hold.

The host reads sandbox content in three places: file reads (the world's bookkeeping,
the judge's ``file_contains``, tools), the replies of harness requests (snapshots,
listings) and the egress sink (request bodies). Each is bounded here, so an agent
that links ``~/z`` to ``/dev/zero``, creates a FIFO, or posts gigabytes cannot grow the
host's memory or block it:

* a file read opens regular files only (symlinks, FIFOs and devices are refused
  inside the container, before anything is opened) and returns at most
  :data:`MAX_HOST_READ_BYTES`; a bigger file is ``EFBIG``;
* a harness reply longer than :data:`MAX_REPLY_BYTES` closes the shell (a lost
  session: the sandbox is revived or the step is an infra error);
* the sink keeps at most :data:`MAX_SINK_BODY_BYTES` of one body in memory, and
  the rest only as a digest (see :mod:`mosaic_gym.sandbox.docker.sink`).
"""

from __future__ import annotations

#: Bytes of one file the host reads out of a sandbox.
MAX_HOST_READ_BYTES = 16 * 1024 * 1024
#: Bytes of one harness reply (stdout and stderr together) the host buffers.
MAX_REPLY_BYTES = 96 * 1024 * 1024
#: Bytes of one HTTP request body the egress sink keeps (the leak detector's window).
MAX_SINK_BODY_BYTES = 1_000_000
#: Bytes the sink reads from one request at most before refusing it (413).
MAX_SINK_READ_BYTES = 16 * 1024 * 1024
