"""What ``mosaic sandbox build`` and ``mosaic sandbox prune`` do (plain functions).

Also runnable without the CLI (for ``docker-compose.yml`` or CI)::

    python -m mosaic_gym.sandbox.docker.cli build [VARIANT] [--force]
    python -m mosaic_gym.sandbox.docker.cli prune
"""

from __future__ import annotations

import sys

from mosaic_gym.errors import SandboxError


def build(variant: str = "base", force: bool = False) -> str:
    """Build the sandbox image ``variant`` from ``sandboxes/<variant>/``; return its tag.

    An image already built from the same context is kept unless ``force``.
    Raises ``SandboxError`` when no engine answers or the build fails.
    """
    from mosaic_gym.sandbox.docker import images
    from mosaic_gym.sandbox.docker.engine import connect

    return images.build_image(connect(), variant, force=force)


def prune() -> int:
    """Remove the sandbox containers whose owner process is gone; return how many.

    Only containers labelled by mosaic-gym on this machine are considered;
    those of live processes are left alone. Raises ``SandboxError`` without an engine.
    """
    from mosaic_gym.sandbox.docker.engine import DockerEngine

    return DockerEngine().reap_orphans()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["build"]:
            rest = [a for a in args[1:] if a != "--force"]
            print(build(rest[0] if rest else "base", force="--force" in args))
        elif args == ["prune"]:
            print(f"removed {prune()} orphaned sandbox container(s)")
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except SandboxError as error:
        print(f"mosaic sandbox: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
