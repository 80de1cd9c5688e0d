"""Policy recipes: YAML files naming a model, a backend, a chat format and sampling.

A recipe (see ``policies/README.md``)::

    name: tiny-transformers
    model: runs/tiny/sft            # folder or hub id (the vllm/transformers backends), or
                                    # the name a server knows (openai backend)
    backend: transformers           # transformers | vllm | openai
    template: null                  # null = the model's own; "mosaic-chatml"; or a .jinja file
    chat_template_kwargs: {}        # e.g. {enable_thinking: true}
    sampling: {temperature: 0.7, top_p: 0.95, top_k: null, max_new_tokens: 256, seed: 0}
    options: {device: cpu}          # backend-specific keyword arguments

:func:`load_policy` turns a recipe into a policy object. Bad recipes raise
:class:`RecipeError` naming the file and the field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mosaic_gym.errors import PolicyRecipeError as RecipeError

Backend = Literal["transformers", "vllm", "openai"]

#: ``options`` each backend accepts (anything else is a recipe error).
BACKEND_OPTIONS: dict[str, frozenset[str]] = {
    "transformers": frozenset({"device", "dtype", "batch_size", "constrained"}),
    "vllm": frozenset({"dtype", "max_model_len", "tensor_parallel_size",
                       "gpu_memory_utilization", "enforce_eager", "trust_remote_code",
                       "download_dir", "quantization", "max_num_seqs", "enable_prefix_caching"}),
    "openai": frozenset({"timeout", "max_retries", "backoff", "concurrency", "send_tools",
                         "keep_tool_calls"}),
}



class Sampling(BaseModel):
    """How turns are sampled (``temperature: 0`` is greedy)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    max_new_tokens: int = Field(512, ge=1)
    seed: int | None = 0
    stop: list[str] = Field(default_factory=list)


class PolicyRecipe(BaseModel):
    """A policy: model, backend, chat format, sampling and backend options."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str = Field(min_length=1)
    model: str = Field(min_length=1)
    backend: Backend
    base_url: str | None = None
    api_key_env: str | None = None
    template: str | None = None
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)
    sampling: Sampling = Field(default_factory=Sampling)
    options: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value

    def check(self) -> None:
        """Cross-field rules (raise ``ValueError`` naming the field)."""
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url (e.g. http://localhost:8000/v1)")
        if self.backend != "openai" and (self.base_url or self.api_key_env):
            raise ValueError(f"base_url/api_key_env only apply to backend 'openai', not "
                             f"{self.backend!r}")
        if self.backend == "openai" and self.template:
            raise ValueError("with backend 'openai' the server applies the chat template; set "
                             "it there (vllm serve --chat-template FILE), not in the recipe")
        unknown = set(self.options) - BACKEND_OPTIONS[self.backend]
        if unknown:
            raise ValueError(f"options {sorted(unknown)} are not known to backend "
                             f"{self.backend!r}; known: "
                             f"{', '.join(sorted(BACKEND_OPTIONS[self.backend]))}")


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "recipe"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def read_recipe(source: str | Path | Mapping[str, Any] | PolicyRecipe) -> PolicyRecipe:
    """A validated recipe from a YAML path, a mapping, or a recipe (returned as is)."""
    import yaml

    if isinstance(source, PolicyRecipe):
        recipe, where = source, f"recipe {source.name!r}"
    else:
        if isinstance(source, Mapping):
            data: Any = dict(source)
            where = "recipe"
        else:
            path = Path(source)
            where = str(path)
            if not path.is_file():
                raise RecipeError(f"{where}: policy recipe not found (recipes live in "
                                  "policies/, e.g. policies/tiny-transformers.yaml)")
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise RecipeError(f"{where}: invalid YAML: {exc}") from None
        if not isinstance(data, Mapping):
            raise RecipeError(f"{where}: a recipe is a mapping of fields, got "
                              f"{type(data).__name__}")
        try:
            recipe = PolicyRecipe.model_validate(data)
        except ValidationError as exc:
            raise RecipeError(f"{where}: {_describe(exc)}") from None
        if not isinstance(source, Mapping):
            recipe = _resolve_template(recipe, Path(source))
    try:
        recipe.check()
    except ValueError as exc:
        raise RecipeError(f"{where}: {exc}") from None
    return recipe


def _resolve_template(recipe: PolicyRecipe, path: Path) -> PolicyRecipe:
    """A relative template path not found from the current directory is looked up next to
    the recipe file and in the folder above it (recipes usually live in ``policies/``)."""
    template = recipe.template
    if not template or template == "mosaic-chatml" or Path(template).is_absolute():
        return recipe
    if Path(template).exists():
        return recipe
    for base in (path.parent, path.parent.parent):
        candidate = base / template
        if candidate.is_file():
            return recipe.model_copy(update={"template": str(candidate)})
    raise RecipeError(f"{path}: template file {template!r} not found (relative to "
                      f"{Path.cwd()} or to the recipe)")


def _local_model(model: str) -> str:
    """Check a model that is clearly a local path; hub ids pass through unchanged."""
    path = Path(model).expanduser()
    looks_local = (path.is_absolute() or model.startswith((".", "~")) or model.count("/") >= 2)
    if path.exists() or not looks_local:
        return str(path) if path.exists() else model
    hint = (" (build it with `mosaic tiny` and `mosaic sft`)" if "tiny" in model else "")
    raise RecipeError(f"model folder {model!r} not found relative to {Path.cwd()}{hint}")


def load_policy(source: str | Path | Mapping[str, Any] | PolicyRecipe) -> Any:
    """Build the policy a recipe describes (a YAML path, a mapping or a :class:`PolicyRecipe`).

    Backends import their libraries here: transformers for ``transformers``, ``vllm`` for
    ``vllm`` (a clear error when missing), nothing extra for ``openai``.
    """
    recipe = read_recipe(source)
    sampling = recipe.sampling.model_dump()
    if recipe.backend == "openai":
        from mosaic_gym.agent.models.openai_policy import OpenAIPolicy

        api_key = None
        if recipe.api_key_env:
            api_key = os.environ.get(recipe.api_key_env)
            if api_key is None:
                raise RecipeError(f"recipe {recipe.name!r}: environment variable "
                                  f"{recipe.api_key_env} (api_key_env) is not set")
        server_sampling = {k: v for k, v in sampling.items() if v not in (None, [])}
        if recipe.chat_template_kwargs:
            server_sampling["chat_template_kwargs"] = dict(recipe.chat_template_kwargs)
        policy = OpenAIPolicy(model=recipe.model, base_url=str(recipe.base_url),
                              sampling=server_sampling, api_key=api_key, **recipe.options)
    elif recipe.backend == "vllm":
        from mosaic_gym.agent.models.vllm_policy import VLLMPolicy

        policy = VLLMPolicy(_local_model(recipe.model), sampling=sampling,
                            template=recipe.template,
                            chat_template_kwargs=recipe.chat_template_kwargs,
                            engine_kwargs=recipe.options)
    else:
        from mosaic_gym.agent.models.transformers_policy import TransformersPolicy

        policy = TransformersPolicy(_local_model(recipe.model), sampling=sampling,
                                    template=recipe.template,
                                    chat_template_kwargs=recipe.chat_template_kwargs,
                                    **recipe.options)
    policy.name = recipe.name
    return policy
