"""Training recipes: one YAML file says what to train, from what, on which episodes.

A recipe names a **method** (``sft``, ``dpo``, ``grpo_pairwise``, ``grpo_scalar``), the
starting **model** (a folder, a hub id, or ``tiny`` to build the offline tiny model), the
**output_dir**, the episodes to learn from (``env``), how rollouts are sampled
(``generation``), the MOSAIC reward settings (``k``, ``l0``, ``length_penalty``,
``format_reward``) and a free ``trl`` mapping of overrides for the TRL config class of the
method (``SFTConfig``, ``DPOConfig``, ``GRPOConfig``). Unknown keys anywhere are errors, and
so are ``trl`` keys that the TRL config class does not have.

Relative paths in a recipe are relative to the working directory of the command, like
every other path given to ``mosaic``. See ``trainers/README.md`` for every field.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mosaic_gym.errors import TrainRecipeError as RecipeError

Method = Literal["sft", "dpo", "grpo_pairwise", "grpo_scalar"]

#: Settings that the trainers own; a recipe sets them through dedicated fields, not ``trl``.
_RESERVED_TRL_KEYS = {"output_dir", "num_generations", "seed", "max_steps", "bf16", "fp16",
                      "use_vllm", "temperature", "top_p", "max_completion_length"}



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvSettings(_Strict):
    """Which episodes to train on (or to collect from)."""

    id: str = Field(default="mosaic/All-v0", description="Environment id (mosaic/All-v0, ...).")
    split: Literal["train", "test", "ood", "all"] = "train"
    attack: str = Field(default="all",
                        description="all (every strategy), none, or one strategy.")
    seeds: list[int] = Field(default_factory=lambda: [0], description="Reset seeds.")
    limit: int | None = Field(default=None, ge=1,
                              description="Use at most this many episodes, drawn round-robin "
                                          "over the categories.")
    backend: Literal["fake", "docker"] = "fake"
    max_steps: int | None = Field(default=None, ge=1, description="Agent turns per episode.")
    scenario_paths: list[str] | None = Field(default=None,
                                             description="Replace the built-in library.")
    remote: str | None = Field(default=None,
                               description="GRPO: step environments served by `mosaic serve` "
                                           "at this URL (OpenEnv) instead of in process.")

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, seeds: list[int]) -> list[int]:
        if not seeds:
            raise ValueError("give at least one seed")
        return seeds


class GenerationSettings(_Strict):
    """How rollouts are sampled (GRPO and DPO collection)."""

    temperature: float = Field(default=1.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(default=256, ge=1, description="Tokens per agent turn.")
    use_vllm: Literal["auto", True, False] = Field(
        default="auto", description="auto: vLLM when it imports and a GPU is present.")
    vllm_mode: Literal["colocate", "server"] = "colocate"


class TrainRecipe(_Strict):
    """A training run, as read from ``trainers/*.yaml``."""

    name: str | None = None
    method: Method
    model: str = Field(description="Starting model: a folder, a hub id, or 'tiny'.")
    tiny: dict[str, Any] = Field(default_factory=dict,
                                 description="build_tiny keyword arguments (model: tiny).")
    output_dir: str
    seed: int = 0
    k: int = Field(default=4, ge=2,
                   description="Rollouts per task (GRPO group / DPO collection).")
    l0: int = Field(default=400, ge=1, description="Length-penalty scale L0 in tokens.")
    length_penalty: bool = True
    format_reward: bool = True
    max_steps: int | None = Field(default=None, ge=1,
                                  description="Optimizer steps (overrides epochs).")
    epochs: float = Field(default=1.0, gt=0.0)
    sft_policy: str = Field(default="comply",
                            description="SFT: the baseline whose trajectories are imitated.")
    sft_refusal_share: float = Field(
        default=0.0, ge=0.0, le=1.0,
        description="SFT: share of episodes ending in a refusal drawn blind to the scenario "
                    "(keeps refusals in the model's repertoire for RL to select).")
    chat_template: str | None = Field(
        default=None, description="DPO/GRPO: replace the model's chat template "
                                  "('mosaic-chatml' or a .jinja file); saved with the model.")
    env: EnvSettings = EnvSettings()
    generation: GenerationSettings = GenerationSettings()
    trl: dict[str, Any] = Field(default_factory=dict,
                                description="Overrides for the TRL config of the method.")

    @field_validator("trl")
    @classmethod
    def _no_reserved(cls, trl: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(_RESERVED_TRL_KEYS & set(trl))
        if clash:
            raise ValueError(f"set {', '.join(clash)} through the recipe's own fields "
                             "(output_dir, k, seed, max_steps, generation.*), not under trl")
        return trl

    @model_validator(mode="after")
    def _method_fits(self) -> TrainRecipe:
        if self.method != "sft" and self.model == "tiny":
            raise ValueError("an untrained tiny model cannot be trained by preference RL; "
                             "run an sft recipe first and point model at its output_dir")
        return self

    @model_validator(mode="after")
    def _template_fits(self) -> TrainRecipe:
        if self.chat_template is not None and self.method == "sft":
            raise ValueError("chat_template is for dpo and grpo recipes; the sft trainer uses "
                             "the model's own template")
        return self

    @property
    def reward(self) -> Literal["pairwise", "scalar"] | None:
        return {"grpo_pairwise": "pairwise", "grpo_scalar": "scalar"}.get(self.method)  # type: ignore[return-value]

    def with_overrides(self, *, output_dir: str | Path | None = None,
                       max_steps: int | None = None) -> TrainRecipe:
        """A copy with the command-line overrides applied."""
        update: dict[str, Any] = {}
        if output_dir is not None:
            update["output_dir"] = str(output_dir)
        if max_steps is not None:
            if max_steps < 1:
                raise RecipeError(f"--max-steps must be at least 1, got {max_steps}")
            update["max_steps"] = max_steps
        return self.model_copy(update=update)


def _format_validation(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid training recipe"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "<top level>"
        lines.append(f"  [{where}] {item['msg']}")
    return "\n".join(lines)


def parse_recipe(data: Any, source: str = "<recipe>") -> TrainRecipe:
    """Validate a mapping as a :class:`TrainRecipe`; raises :class:`RecipeError`."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe must be a YAML mapping, got "
                          f"{type(data).__name__}")
    try:
        return TrainRecipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(_format_validation(exc, source)) from None


def load_recipe(path: str | Path) -> TrainRecipe:
    """Read and validate a recipe file; raises :class:`RecipeError` naming the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    return parse_recipe(data, str(path))


def config_class_for(method: str) -> type:
    """The TRL config class a method's ``trl`` mapping overrides."""
    import trl

    return {"sft": trl.SFTConfig, "dpo": trl.DPOConfig}.get(method, trl.GRPOConfig)


#: ``trl`` keys an sft recipe may set, and the ``run_sft`` argument each one becomes.
SFT_KEYS = {"learning_rate": "learning_rate", "per_device_train_batch_size": "batch_size",
             "gradient_accumulation_steps": "grad_accum", "max_length": "max_length",
             "warmup_steps": "warmup"}


def check_trl_keys(config_class: type, recipe: TrainRecipe) -> None:
    """Raise :class:`RecipeError` for ``trl`` keys the config class does not have (with the
    closest names). SFT recipes accept a fixed subset (see ``run_sft_recipe``)."""
    import dataclasses

    known = {f.name for f in dataclasses.fields(config_class)}
    if recipe.method == "sft":
        known &= set(SFT_KEYS)
    unknown = [key for key in recipe.trl if key not in known]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=2)
            hints.append(f"{key!r}" + (f" (did you mean {' or '.join(close)}?)" if close else ""))
        raise RecipeError(f"recipe {recipe.name or recipe.method}: unknown {config_class.__name__} "
                          f"key(s) under trl: {', '.join(hints)}")


def trl_config(config_class: type, recipe: TrainRecipe, defaults: dict[str, Any],
               forced: dict[str, Any]) -> Any:
    """Build a TRL config: ``defaults`` < the recipe's ``trl`` overrides < ``forced``.

    Raises :class:`RecipeError` for a ``trl`` key the config class does not know (with the
    closest names) or a value TRL rejects.
    """
    check_trl_keys(config_class, recipe)
    values = {**defaults, **recipe.trl, **forced}
    try:
        return config_class(**values)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"recipe {recipe.name or recipe.method}: {config_class.__name__} "
                          f"rejected the settings: {exc}") from None


def cpu_only() -> bool:
    """True when training must run on the CPU (no CUDA device, or CUDA hidden)."""
    import torch

    return not torch.cuda.is_available() or os.environ.get("CUDA_VISIBLE_DEVICES") == ""


def precision_flags() -> dict[str, Any]:
    """bf16 on GPUs that support it; plain fp32 on CPU (TRL must get ``bf16=False`` there)."""
    if cpu_only():
        return {"bf16": False, "fp16": False, "use_cpu": True}
    import torch

    return {"bf16": bool(torch.cuda.is_bf16_supported()), "fp16": False}
