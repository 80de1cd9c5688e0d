"""CLI commands of the application layer: ``view``, ``compare``, ``serve``, ``inspect``.

Kept out of ``cli.py`` so that each command is a small function next to its peers and the
core CLI module stays short; ``cli.py`` calls :func:`register` once. Each command checks its
arguments and its extra first (one red line, exit code 2) and imports its heavy modules
only then, so ``mosaic --help`` stays fast and needs no extra.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from mosaic_gym.errors import MosaicError


def register(app: typer.Typer, fail: Callable[[str], Any]) -> None:
    """Add the commands to ``app``; ``fail(message)`` prints the red line and exits 2."""

    @app.command("view")
    def view_command(
        run_dir: Annotated[Path, typer.Argument(help="A folder written by mosaic eval.")],
        out: Annotated[Path | None, typer.Option(
            help="Where to write the page (default: RUN_DIR/report.html).")] = None,
        scenarios: Annotated[list[Path] | None, typer.Option(
            "--scenarios", help="Scenario files or folders the run used, to print their "
                                "checks (default: the library).")] = None,
    ) -> None:
        """Write a self-contained HTML report of a run (opens from disk, no server)."""
        from mosaic_gym.report.viewer import write_report

        try:
            path = write_report(run_dir, out, scenarios)
        except (MosaicError, OSError) as exc:
            fail(str(exc))
            return
        typer.echo(f"wrote {path} (open it in a browser: file://{path.resolve()})")

    @app.command("compare")
    def compare_command(
        runs: Annotated[list[Path], typer.Argument(
            help="Run folders; the first is the baseline.")],
        png: Annotated[Path | None, typer.Option(
            help="Forest plot of the paired deltas (default: compare.png in the last "
                 "run folder; needs matplotlib).")] = None,
        json_out: Annotated[Path | None, typer.Option(
            "--json", help="Also write the comparison as JSON here.")] = None,
        seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    ) -> None:
        """Compare runs: per-metric deltas with 95 % intervals and a paired test."""
        import importlib.util
        import json

        from mosaic_gym.report.compare import compare

        if len(runs) < 2:
            fail("compare needs at least two run folders (the first is the baseline)")
        if png is None and importlib.util.find_spec("matplotlib") is not None:
            png = runs[-1] / "compare.png"
        elif png is not None:
            from mosaic_gym.cli_checks import require_extra

            try:
                require_extra("report", "--png")
            except MosaicError as exc:
                fail(str(exc))
        try:
            result = compare(runs, png=png, seed=seed)
        except (MosaicError, ValueError, OSError) as exc:
            fail(str(exc))
            return
        if json_out is not None:
            json_out.write_text(json.dumps(result, indent=2), encoding="utf-8")
            typer.echo(f"wrote {json_out}")

    @app.command("export-inspect")
    def export_inspect_command(
        run_dir: Annotated[Path, typer.Argument(help="A folder written by mosaic eval.")],
        log_dir: Annotated[Path, typer.Option(help="Inspect log folder (inspect view "
                                                   "--log-dir).")] = Path("logs"),
    ) -> None:
        """Write a run as an Inspect eval log that `inspect view` opens (needs [inspect])."""
        from mosaic_gym.cli_checks import require_extra

        try:
            require_extra("inspect", "mosaic export-inspect")
            from mosaic_gym.bridges.inspect_ai import export_run

            path = export_run(run_dir, log_dir)
        except (MosaicError, OSError) as exc:
            fail(str(exc))
            return
        typer.echo(f"wrote {path} (inspect view --log-dir {log_dir})")

    @app.command("serve")
    def serve_command(
        env_id: Annotated[str, typer.Option("--env", help="Environment id.")] = "mosaic/All-v0",
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
        split: Annotated[str, typer.Option(help="train, test, ood or all.")] = "train",
        attack: Annotated[str, typer.Option(
            help="random (a strategy per episode), none, or a strategy.")] = "random",
        backend: Annotated[str, typer.Option(help="fake or docker.")] = "fake",
        max_sessions: Annotated[int, typer.Option(
            help="Concurrent WebSocket sessions (one environment each).")] = 8,
    ) -> None:
        """Serve environments over OpenEnv (WebSocket sessions at /ws; needs [openenv])."""
        from mosaic_gym import cli_checks as check

        try:
            check.require_extra("openenv", "mosaic serve")
            check.check_env_id(env_id)
            check.check_split(split)
            check.check_backend(backend)
            check.check_choice("--attack", attack, ["random", "none", *_strategies()])
            check.check_count("--max-sessions", max_sessions)
            if not 0 < port < 65536:
                raise ValueError(f"--port must be between 1 and 65535 (got {port})")
            from mosaic_gym.bridges.openenv import create_server_app

            app_ = create_server_app(env_id, max_sessions=max_sessions, split=split,
                                     attack=attack, backend=backend)
        except (MosaicError, ValueError) as exc:
            fail(str(exc))
            return
        import uvicorn

        typer.echo(f"serving {env_id} on ws://{host}:{port}/ws (OpenEnv; Ctrl-C stops)")
        uvicorn.run(app_, host=host, port=port, log_level="warning")


def _strategies() -> list[str]:
    from mosaic_gym.attacks import list_strategies

    return list(list_strategies())
