"""Running a training recipe: build the starting model if needed, then SFT, DPO or GRPO.

The recipe schema and its validation live in :mod:`mosaic_gym.train.recipes`; the trainers
import it, and this module, above them all, dispatches a recipe to its trainer.
"""

from __future__ import annotations

from pathlib import Path

from mosaic_gym.train.recipes import (
    SFT_KEYS,
    RecipeError,
    TrainRecipe,
    check_trl_keys,
    config_class_for,
)


def resolve_model(recipe: TrainRecipe, *, quiet: bool = False) -> str:
    """The starting model: ``tiny`` is built into ``<output_dir>/base`` (once) first."""
    if recipe.model != "tiny":
        return recipe.model
    from mosaic_gym.train.tiny import build_tiny

    base = Path(recipe.output_dir) / "base"
    if not (base / "config.json").is_file():
        if not quiet:
            print(f"building the tiny model into {base}")
        paths = recipe.env.scenario_paths
        try:
            build_tiny(base, scenario_paths=paths, seed=recipe.seed, **recipe.tiny)
        except TypeError as exc:
            raise RecipeError(f"recipe {recipe.name or 'sft'}: bad tiny settings: {exc}") from None
    return str(base)


def run_sft_recipe(recipe: TrainRecipe, *, quiet: bool = False) -> Path:
    """SFT on the trajectories of a scripted baseline (``sft_policy``), via ``run_sft``."""
    from mosaic_gym.train.sft import run_sft

    check_trl_keys(config_class_for("sft"), recipe)
    model = resolve_model(recipe, quiet=quiet)
    extra = {SFT_KEYS[key]: value for key, value in recipe.trl.items()}
    return Path(run_sft(model, recipe.output_dir, policy=recipe.sft_policy,
                        split=recipe.env.split, seeds=recipe.env.seeds, attack=recipe.env.attack,
                        max_steps=recipe.max_steps or -1, epochs=recipe.epochs, seed=recipe.seed,
                        scenario_paths=recipe.env.scenario_paths, limit=recipe.env.limit,
                        refusal_share=recipe.sft_refusal_share, progress=not quiet, **extra))


def run_recipe(recipe: TrainRecipe, *, quiet: bool = False) -> Path:
    """Run a recipe to its end; return the folder holding the trained model."""
    if recipe.method == "sft":
        return run_sft_recipe(recipe, quiet=quiet)
    if recipe.method == "dpo":
        from mosaic_gym.train.dpo import run_dpo_recipe

        return run_dpo_recipe(recipe, quiet=quiet)
    from mosaic_gym.train.grpo import run_grpo_recipe

    return run_grpo_recipe(recipe, quiet=quiet)
