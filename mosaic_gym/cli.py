"""The ``mosaic`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from mosaic_gym.errors import MosaicError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="mosaic-gym: sandboxed tool environments for agents that plan, check, "
                       "then act or refuse.")
scenarios_app = typer.Typer(no_args_is_help=True, help="Author and validate scenario files.")
sandbox_app = typer.Typer(no_args_is_help=True, help="Docker sandbox images and containers.")
app.add_typer(scenarios_app, name="scenarios")
app.add_typer(sandbox_app, name="sandbox")
suites_app = typer.Typer(no_args_is_help=True, help="External benchmark suites (AgentDojo, BFCL).")
app.add_typer(suites_app, name="suites")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command("eval")
def eval_command(
    policy: Annotated[str, typer.Option(
        help="Built-in policy (reference, comply, refuse, random), a recipe YAML in "
             "policies/, or module:factory (your own policy).")] = "reference",
    env_id: Annotated[str, typer.Option("--env", help="Environment id.")] = "mosaic/All-v0",
    split: Annotated[str, typer.Option(help="train, test, ood or all.")] = "all",
    attack: Annotated[str, typer.Option(help="all (every strategy), none, or a strategy.")] = "all",
    seeds: Annotated[int, typer.Option(help="Seeds per (scenario, attack).")] = 1,
    backend: Annotated[str, typer.Option(help="fake or docker.")] = "fake",
    scenario: Annotated[str | None, typer.Option(
        help="A scenario id, a YAML file or a folder of them: plays mosaic/Scenario-v0.")] = None,
    out: Annotated[Path, typer.Option(help="Directory for metrics.json and "
                                           "trajectories.jsonl.")] = Path("runs/eval"),
    limit: Annotated[int | None, typer.Option(
        help="Play at most this many episodes, drawn round-robin over the categories.")] = None,
    fresh: Annotated[bool, typer.Option(
        help="Start over: delete what a previous run left in --out (by default the same "
             "command resumes it).")] = False,
    num_envs: Annotated[int, typer.Option(help="Environments stepped in lockstep (the batch "
                                               "of a batched policy).")] = 1,
    trust_code: Annotated[bool, typer.Option(
        "--trust-code", help="Let scenario files run code (python: predicates).")] = False,
    suite: Annotated[str | None, typer.Option(help="An external suite instead of --env: "
                                                   "agentdojo or bfcl.")] = None,
) -> None:
    """Evaluate a policy: one table per category, JSON metrics, JSONL trajectories."""
    from mosaic_gym import cli_checks as check
    from mosaic_gym.evaluate import evaluate_policy

    if suite is not None:
        from mosaic_gym.suite_eval import evaluate_suite

        try:
            evaluate_suite(policy, suite, limit, out=out, quiet=False)
        except (MosaicError, ValueError) as exc:
            _fail(str(exc))
        typer.echo(f"wrote {out / 'metrics.json'} and {out / 'trajectories.jsonl'}")
        return
    try:
        # Every flag is checked before the plan is played or runs/eval is touched.
        check.check_count("--seeds", seeds)
        check.check_count("--limit", limit)
        env_id, scenario = check.check_play_flags(split=split, attack=attack, backend=backend,
                                                  env_id=env_id, scenario=scenario,
                                                  policy=policy)
        evaluate_policy(policy=policy, env_id=env_id, split=split, attack=attack,
                        seeds=range(seeds), backend=backend, scenario=scenario, out=out,
                        limit=limit, fresh=fresh, num_envs=num_envs,
                        trust_code=trust_code)
    except (MosaicError, ValueError) as exc:
        _fail(str(exc))


@suites_app.command("check")
def suites_check(
    suite: Annotated[str, typer.Argument(help="agentdojo or bfcl.")],
    quick: Annotated[bool, typer.Option(help="A reduced plan (the first tasks or items), "
                                             "as CI runs it.")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the report as JSON.")] = None,
) -> None:
    """Scripted ignore / obey / refuse agents over a suite; exits 1 on failures."""
    from mosaic_gym.suite_check import run_check

    try:
        failures = run_check(suite, quick=quick, out=out, echo=typer.echo)
    except (MosaicError, ValueError) as exc:
        _fail(str(exc))
    if failures:
        raise typer.Exit(1)


@scenarios_app.command("check")
def scenarios_check(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or directories "
                                                               "(default: the library).")] = None,
    seeds: Annotated[int, typer.Option(
        help="Seeds of the benign reference checks per scenario (tool errors, checks "
             "true in the initial world, canaries cross-checked over the seed pairs).")
    ] = 100,
    attack_seeds: Annotated[int, typer.Option(
        help="Seeds of the injection, attacker and unsafe checks (one episode per attack "
             "strategy each; at most --seeds).")] = 2,
    backend: Annotated[str, typer.Option(help="fake or docker.")] = "fake",
    properties: Annotated[bool, typer.Option(
        "--properties", help="Instead, run the mosaic_gym.testing invariant set (Hypothesis; "
                             "needs the 'testing' extra).")] = False,
    profile: Annotated[str, typer.Option(help="With --properties: fast or thorough.")] = "fast",
    trust_code: Annotated[bool, typer.Option(
        "--trust-code", help="Let scenario files run code (python: predicates).")] = False,
) -> None:
    """Self-check: reference solutions work, injections are reachable, traps fire."""
    from rich.console import Console

    from mosaic_gym.selfcheck import check_paths

    if properties:
        _check_properties(paths, profile)
        return
    console = Console()
    try:
        from mosaic_gym import cli_checks as check

        check.check_count("--seeds", seeds)
        check.check_count("--attack-seeds", attack_seeds)
        results = check_paths(paths, seeds=range(seeds), backend=backend, trust_code=trust_code,
                              attack_seeds=range(min(seeds, attack_seeds)))
    except (MosaicError, ValueError) as exc:
        _fail(str(exc))
        return
    failures = [r for r in results if not r.passed]
    for result in failures:
        where = f" ({result.where})" if result.where else ""
        console.print("[red]FAIL[/red] ", end="")
        console.print(f"{result.scenario_id}{where}: {result.check}: {result.detail}",
                      markup=False, highlight=False, soft_wrap=True)
    scenario_count = len({r.scenario_id for r in results})
    colour = "red" if failures else "green"
    console.print(f"[{colour}]{len(results) - len(failures)} passed, {len(failures)} failed"
                  f"[/{colour}] ({scenario_count} scenario variants)")
    raise typer.Exit(1 if failures else 0)


def _check_properties(paths: list[Path] | None, profile: str) -> None:
    """``scenarios check --properties``: the invariant set over scenario files; exit 1 on any
    violation (each printed with its shrunk counterexample)."""
    from rich.console import Console

    try:
        from mosaic_gym.testing.suite import check_paths as check_properties
    except ImportError as exc:
        _fail(f"--properties needs the testing extra (pip install 'mosaic-gym[testing]'): {exc}")
        return
    from mosaic_gym.scenario.library import library_dirs

    console = Console()
    try:
        results = check_properties(paths or library_dirs(), profile)
    except (MosaicError, ValueError) as exc:
        _fail(str(exc))
        return
    failures = [r for r in results if not r.passed]
    for result in failures:
        console.print(f"[red]FAIL[/red] {result.scenario}: {result.invariant}", highlight=False)
        console.print(result.detail, markup=False, highlight=False)
    colour = "red" if failures else "green"
    console.print(f"[{colour}]{len(results) - len(failures)} passed, {len(failures)} failed"
                  f"[/{colour}] ({len({r.scenario for r in results})} scenario files, "
                  f"profile {profile})")
    raise typer.Exit(1 if failures else 0)


@scenarios_app.command("schema")
def scenarios_schema(
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of scenario files (for editor validation and completion).

    It accepts every file the loader accepts; what it cannot express (cross-references,
    the YAML bounds, the self-check's rules) is listed under "Loader-only rules" in
    scenarios/README.md.
    """
    from mosaic_gym.scenario.json_schema import scenario_json_schema

    text = json.dumps(scenario_json_schema(), indent=2)
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {out}")


@scenarios_app.command("reference")
def scenarios_reference(
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout "
                                                   "(docs/scenario-reference.md).")] = None,
) -> None:
    """Print the author's reference: tools and their arguments, event targets for
    allowed_effects, fake shell commands, predicates, Faker providers, strategies."""
    from mosaic_gym.scenario_reference import render

    text = render()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")


@scenarios_app.command("list")
def scenarios_list(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or directories.")] = None,
    trust_code: Annotated[bool, typer.Option(
        "--trust-code", help="Let scenario files run code (python: predicates).")] = False,
) -> None:
    """List scenario variants with category, domain, split, and the episode count."""
    from rich.console import Console
    from rich.table import Table

    from mosaic_gym.rollout.plan import episode_plan
    from mosaic_gym.scenario.library import load_library

    try:
        variants = load_library(paths, trust_code=trust_code)
    except MosaicError as exc:
        _fail(str(exc))
        return
    table = Table("id", "category", "domain", "split", "expected", "attacks")
    for v in variants:
        attacks = len(episode_plan([v], [0]))
        table.add_row(v.id, v.category, v.domain, v.split, v.expected,
                      str(attacks) if v.has_injection else "-")
    console = Console()
    console.print(table)
    files = len({v.source for v in variants})
    episodes = len(episode_plan(variants, [0]))
    console.print(f"{files} files, {len(variants)} variants, {episodes} distinct episodes "
                  "(variant x attack strategy), each further varied by Faker per seed")


@sandbox_app.command("build")
def sandbox_build(
    variant: Annotated[str, typer.Option(help="Image variant (a folder of sandboxes/).")] = "base",
    force: Annotated[bool, typer.Option(help="Rebuild even if present.")] = False,
) -> None:
    """Build the sandbox image locally from Debian packages (no registry needed)."""
    from mosaic_gym.sandbox.docker.cli import build

    try:
        typer.echo(build(variant=variant, force=force))
    except MosaicError as exc:
        _fail(str(exc))


@sandbox_app.command("prune")
def sandbox_prune() -> None:
    """Remove sandbox containers left behind by dead processes."""
    from mosaic_gym.sandbox.docker.cli import prune

    try:
        typer.echo(f"removed {prune()} container(s)")
    except MosaicError as exc:
        _fail(str(exc))


@app.command("tiny")
def tiny_command(
    out: Annotated[Path, typer.Option(help="Folder for the model and tokenizer.")] = Path(
        "runs/tiny/base"),
    seed: Annotated[int, typer.Option(help="Seed of the weight initialisation.")] = 0,
    vocab_size: Annotated[int, typer.Option(help="Tokenizer vocabulary size.")] = 4096,
    split: Annotated[str, typer.Option(help="Scenario split the tokenizer is trained "
                                            "on.")] = "train",
) -> None:
    """Build the tiny offline chat model (random weights, trained tokenizer) into OUT."""
    _needs_train_extra("mosaic tiny")
    from rich.console import Console

    from mosaic_gym.train.tiny import build_tiny

    try:
        with Console(stderr=True).status(f"building the tiny model into {out}"):
            path = build_tiny(out, seed=seed, vocab_size=vocab_size, split=split)
    except (MosaicError, ValueError) as exc:
        _fail(str(exc))
    info = json.loads((path / "mosaic_tiny.json").read_text(encoding="utf-8"))
    typer.echo(f"wrote {path}: {info['parameters']:,} parameters, vocabulary {info['vocab_size']}")


@app.command("sft")
def sft_command(
    model: Annotated[Path, typer.Option(help="Model folder to fine-tune.")] = Path(
        "runs/tiny/base"),
    out: Annotated[Path, typer.Option(help="Folder for the fine-tuned model.")] = Path(
        "runs/tiny/sft"),
    policy: Annotated[str, typer.Option(help="Scripted teacher (a built-in "
                                             "baseline).")] = "comply",
    split: Annotated[str, typer.Option(help="Scenario split of the teacher's "
                                            "episodes.")] = "train",
    seeds: Annotated[int, typer.Option(help="Seeds per (scenario, attack).")] = 2,
    max_steps: Annotated[int, typer.Option(help="Optimizer steps (-1: use --epochs).")] = 120,
    epochs: Annotated[float, typer.Option(help="Epochs when --max-steps is -1.")] = 1.0,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 4e-3,
    batch_size: Annotated[int, typer.Option(help="Episodes per optimizer step.")] = 4,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    check: Annotated[int, typer.Option(help="Then play up to this many test-split episodes "
                                            "(one per scenario) and print the format-error "
                                            "rate (0: skip).")] = 0,
) -> None:
    """Fine-tune a model on a scripted teacher's trajectories (assistant-only loss, CPU)."""
    _needs_train_extra("mosaic sft")
    from mosaic_gym import cli_checks as check
    from mosaic_gym.train.sft import check_format, run_sft

    try:
        check.check_count("--seeds", seeds)
        check.check_count("--batch-size", batch_size)
        check.check_split(split)
        if not model.is_dir():
            raise FileNotFoundError(f"--model {model}: no such model folder (build one with "
                                    "mosaic tiny)")
        path = run_sft(model, out, policy=policy, split=split, seeds=range(seeds),
                       max_steps=max_steps, epochs=epochs, learning_rate=lr,
                       batch_size=batch_size, seed=seed)
    except (MosaicError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
        return
    info = json.loads((path / "mosaic_sft.json").read_text(encoding="utf-8"))
    typer.echo(f"wrote {path} ({info['steps']} steps on {info['episodes']} episodes, "
               f"loss {info['first_logged_loss']} -> {info['last_logged_loss']}); "
               f"recipe: {path / 'policy.yaml'}")
    if check > 0:
        stats = check_format(path, episodes=check)
        typer.echo(f"format-error rate on {stats['episodes']} test episodes: "
                   f"{100 * stats['format_error_rate']:.1f}% of {stats['turns']} turns")


@app.command("collect")
def collect_command(
    policy: Annotated[str, typer.Option(help="Built-in policy (reference, comply, refuse, "
                                             "random) or a recipe YAML.")] = "random",
    env_id: Annotated[str, typer.Option("--env", help="Environment id.")] = "mosaic/All-v0",
    out: Annotated[Path, typer.Option(help="JSONL file of groups (resumed if it "
                                           "exists).")] = Path("runs/collect/rollouts.jsonl"),
    k: Annotated[int, typer.Option("--k", help="Rollouts per group.")] = 4,
    seeds: Annotated[int, typer.Option(help="Reset seeds per (scenario, attack).")] = 1,
    split: Annotated[str, typer.Option(help="train, test, ood or all.")] = "train",
    attack: Annotated[str, typer.Option(help="all (every strategy), none, or a strategy.")] = "all",
    backend: Annotated[str, typer.Option(help="fake or docker.")] = "fake",
    scenario: Annotated[str | None, typer.Option(help="For mosaic/Scenario-v0.")] = None,
    num_envs: Annotated[int, typer.Option(help="Environments stepped in lockstep (the batch "
                                               "of a batched policy).")] = 8,
    limit: Annotated[int | None, typer.Option(
        help="Collect at most this many groups, drawn round-robin over the categories.")] = None,
    fresh: Annotated[bool, typer.Option(
        help="Start over: delete what a previous collection left in --out.")] = False,
    ray_address: Annotated[str | None, typer.Option(
        "--ray", help="Ray address for ray.init (or 'local'): spread groups over actors.")] = None,
    actors: Annotated[int | None, typer.Option(help="Ray actors (default: the cluster's "
                                                       "CPUs).")] = None,
    actor_gpus: Annotated[float, typer.Option(help="GPUs per Ray actor.")] = 0.0,
) -> None:
    """Collect groups of K rollouts per (scenario, attack, seed) for preference training."""
    from mosaic_gym import cli_checks as check

    try:
        for flag, value in (("--k", k), ("--seeds", seeds), ("--num-envs", num_envs),
                            ("--limit", limit), ("--actors", actors)):
            check.check_count(flag, value)
        env_id, scenario = check.check_play_flags(split=split, attack=attack, backend=backend,
                                                  env_id=env_id, scenario=scenario,
                                                  policy=policy)
        check.check_ray(ray_address)  # "no cluster" now, not after the plan is built
    except (MosaicError, ValueError) as exc:
        _fail(str(exc))
    from mosaic_gym.rollout.collect import collect, summarize_collection

    options = {"num_gpus": actor_gpus} if actor_gpus else None
    try:
        collect(policy, env_id=env_id, out=out, k=k, seeds=seeds, split=split, attack=attack,
                backend=backend, scenario=scenario, num_envs=num_envs, limit=limit,
                ray_address=ray_address, num_actors=actors, actor_options=options, fresh=fresh)
    except (MosaicError, ValueError) as exc:
        _fail(str(exc))
    figures = summarize_collection(out)
    typer.echo(" ".join(f"{name}={value:.3f}" if isinstance(value, float) else
                        f"{name}={value}" for name, value in figures.items()))


@app.command("train")
def train_command(
    recipe: Annotated[Path, typer.Option(help="Training recipe YAML (trainers/*.yaml).")],
    out: Annotated[Path | None, typer.Option(help="Override the recipe's output_dir.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Override the optimizer steps.")] = None,
) -> None:
    """Train a policy from a recipe: SFT, DPO, or GRPO (pairwise MOSAIC or scalar)."""
    from mosaic_gym import cli_checks as check

    try:
        check.check_count("--max-steps", max_steps)
        # The whole recipe, TRL keys included, before any rollout or model load.
        check.check_train_recipe(recipe)
    except (MosaicError, ValueError) as exc:
        _fail(str(exc))
    from mosaic_gym.train.recipes import load_recipe
    from mosaic_gym.train.run import run_recipe

    try:
        loaded = load_recipe(recipe).with_overrides(output_dir=out, max_steps=max_steps)
        path = run_recipe(loaded)
    except (MosaicError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
        return
    typer.echo(f"wrote {path}")


@app.command("replicate")
def replicate_command(
    out: Annotated[Path, typer.Option(help="Folder for models, metrics and the "
                                           "table.")] = Path("runs/replicate"),
    quick: Annotated[bool, typer.Option(help="A few steps per stage (the CI form).")] = False,
    seed: Annotated[int, typer.Option(help="Seed of every stage.")] = 0,
    eval_episodes: Annotated[int | None, typer.Option(
        help="Episodes evaluated per split (a stratified subset; 0 = all).")] = None,
    splits: Annotated[str | None, typer.Option(
        help="Splits to evaluate, comma-separated, the first one heading the table: "
             "heldout (training variants at unseen episode seeds), test (unseen variants "
             "of the training domains), ood (unseen domains); default heldout,test,ood "
             "(--quick: heldout,ood).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a field of the plan, FIELD=JSON (repeatable), e.g. "
                      "--set constrained=true --set sft_max_steps=900 "
                      "--set 'tiny={\"num_layers\": 6}'.")] = None,
    pool: Annotated[list[Path] | None, typer.Option(
        "--pool", help="Train nothing: pool finished runs of different seeds (repeatable, "
                       "at least two) into one table per split, written to --out as "
                       "pooled.json and pooled.png.")] = None,
) -> None:
    """Tiny model -> SFT -> pairwise GRPO, scalar GRPO and DPO; the table with intervals on
    held-out seeds of the training variants, test and ood."""
    if pool:
        from mosaic_gym.train.replicate import pool as pool_runs

        try:
            pool_runs(pool, out)
        except (MosaicError, ValueError, FileNotFoundError) as exc:
            _fail(str(exc))
        return
    _needs_train_extra("mosaic replicate")
    if eval_episodes is not None and eval_episodes < 0:
        _fail(f"--eval-episodes must be 0 (all) or more (got {eval_episodes})")
    from mosaic_gym.train.replicate import replicate

    try:
        chosen = tuple(s.strip() for s in splits.split(",") if s.strip()) if splits else None
        from mosaic_gym.train.replicate import plan_with

        plan = plan_with(set_ or (), quick=quick)
        replicate(out, quick=quick, seed=seed, eval_episodes=eval_episodes,
                  eval_splits=chosen, plan=plan)
    except (MosaicError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))


def _needs_train_extra(command: str) -> None:
    from mosaic_gym.cli_checks import require_extra

    try:
        require_extra("train", command)
    except MosaicError as exc:
        _fail(str(exc))


def _register_more_commands() -> None:
    # Commands that live in their own modules (report viewer, bridges): one line each here.
    from mosaic_gym.cli_apps import register

    register(app, fail=_fail)


_register_more_commands()


def _click_exceptions() -> tuple[type[Exception], type[Exception]]:
    """(UsageError, ClickException) of the click that typer runs on (recent typer vendors it)."""
    try:
        from typer._click.exceptions import ClickException, UsageError
    except ImportError:  # typer on the public click
        from click.exceptions import ClickException, UsageError
    return UsageError, ClickException


def main() -> None:
    usage_error, click_exception = _click_exceptions()
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            raise SystemExit(code)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        typer.secho("aborted", fg=typer.colors.RED, err=True)
        raise SystemExit(130) from None
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `mosaic` or `mosaic scenarios`
            typer.echo(exc.format_message())  # type: ignore[attr-defined]
            raise SystemExit(0) from None
        # A bad or missing flag: one red line (and where to look), not a framed box.
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "mosaic"
        message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
        typer.secho(f"error: {message} (see '{command} --help')", fg=typer.colors.RED,
                    err=True)
        raise SystemExit(2) from None
    except click_exception as exc:
        message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
