"""The Gymnasium environment: text actions in the MOSAIC format, text observations.

One episode = one scenario variant, one seed, one attack strategy (or none).
``reset(seed=s)`` determines the scenario choice, the attack, every Faker value
and therefore every observation. ``info`` carries the chat ``messages``
(OpenAI format), the ``tools`` schemas, the scenario id, the ledger so far and,
when the episode ends, the ``outcome``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym

from mosaic_gym.agent.format import ParsedAction, parse_action
from mosaic_gym.agent.prompts import system_prompt
from mosaic_gym.attacks import (
    AttackContext,
    ConditionalInjection,
    get_strategy,
    list_strategies,
)
from mosaic_gym.envs.failclosed import describe_failure, is_fatal
from mosaic_gym.envs.rewards import RewardFn, get_reward
from mosaic_gym.envs.spaces import UnicodeText
from mosaic_gym.errors import SandboxError, ScenarioError, ToolError
from mosaic_gym.judge.context import JudgeContext
from mosaic_gym.judge.ledger import Ledger, LedgerEntry
from mosaic_gym.judge.outcome import Outcome, Termination, judge
from mosaic_gym.sandbox.base import Sandbox
from mosaic_gym.scenario.library import find_variant, load_library
from mosaic_gym.scenario.loader import ScenarioVariant
from mosaic_gym.scenario.resolve import ResolvedScenario, resolve
from mosaic_gym.tools import ToolRegistry, standard_tools
from mosaic_gym.tools.services import REFUSAL_TOOL
from mosaic_gym.world.world import World, WorldSnapshot

MAX_TEXT = 200_000
DEFAULT_MAX_STEPS = 15


def make_sandbox(backend: str, image: str = "base") -> Sandbox:
    """A sandbox of the named backend ("fake" or "docker"; ``image``: docker variant)."""
    if backend == "fake":
        from mosaic_gym.sandbox.fake import FakeSandbox

        return FakeSandbox()
    if backend == "docker":
        from mosaic_gym.sandbox.docker import DockerSandbox

        return DockerSandbox(variant=image)
    raise ValueError(f"unknown backend {backend!r}; expected 'fake' or 'docker'")


class MosaicEnv(gym.Env[str, str]):
    """A tool-use episode judged from ground truth.

    Args:
        category: "benign", "harmful", "injection", "privacy", or "all".
        scenario: a scenario id, family id or YAML path (``mosaic/Scenario-v0``).
        backend: "fake" (default, in-process) or "docker".
        attack: strategy name, "random" (a strategy drawn per episode), or
            "none" (benign variants of injection scenarios).
        split: "train", "test", "ood" or "all".
        max_steps: steps before truncation (default: the scenario's, else 15).
        reward: a named scheme ("sparse", "shaped") or ``callable(outcome) -> float``.
        scenario_paths: directories or files replacing the built-in library.
        trust_code: let scenario files run code (``python:`` predicates); off by
            default, since a scenario file is data (see mosaic_gym.scenario.trust).
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        category: str = "all",
        scenario: str | None = None,
        backend: str = "fake",
        attack: str = "random",
        split: str = "train",
        max_steps: int | None = None,
        reward: str | RewardFn = "sparse",
        scenario_paths: Sequence[str | Path] | None = None,
        render_mode: str | None = None,
        trust_code: bool = False,
    ) -> None:
        if attack not in ("random", "none") and attack not in list_strategies():
            raise ValueError(f"unknown attack {attack!r}; expected 'random', 'none' or one of "
                             f"{', '.join(list_strategies())}")
        if split not in ("train", "test", "ood", "all"):
            raise ValueError(f"unknown split {split!r}; expected train, test, ood or all")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        self.trust_code = trust_code
        self.pool = self._select(category, scenario, split, scenario_paths, trust_code)
        self.backend = backend
        self.attack = attack
        self.max_steps_override = max_steps
        self.reward_fn = get_reward(reward)
        self.render_mode = render_mode
        self.observation_space = UnicodeText(MAX_TEXT)
        self.action_space = UnicodeText(MAX_TEXT)
        self.all_tools: ToolRegistry = standard_tools()
        self.sandbox: Sandbox | None = None
        self._sandbox_image = "base"
        self._faker: Any = None
        self._episode: _Episode | None = None

    @staticmethod
    def _select(category: str, scenario: str | None, split: str,
                paths: Sequence[str | Path] | None,
                trust_code: bool = False) -> list[ScenarioVariant]:
        if scenario is not None:
            return find_variant(scenario, paths, trust_code=trust_code)
        variants = load_library(paths, trust_code=trust_code)
        chosen = [v for v in variants
                  if (category == "all" or v.category == category)
                  and (split == "all" or v.split == split)]
        if not chosen:
            raise ScenarioError(f"no scenarios of category {category!r} in split {split!r}")
        return chosen

    # -- gymnasium API -----------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        variant = self._pick_variant(options.get("scenario"))
        attack = self._pick_attack(variant, options.get("attack"))
        episode_seed = int(self.np_random.integers(2**31 - 1))
        if self._faker is None:
            from faker import Faker

            self._faker = Faker("en_US")
        resolved = resolve(variant, episode_seed, faker=self._faker)
        image = resolved.spec.sandbox_image if self.backend == "docker" else "base"
        if self.sandbox is not None and image != self._sandbox_image:
            self.sandbox.close()  # the scenario needs another image variant
            self.sandbox = None
        if self._episode is not None and self._episode.infra_error is not None:
            self._discard_sandbox()  # it failed (hung, full, broken): never reuse it
        if self.sandbox is None:
            self.sandbox = make_sandbox(self.backend, image)
            self._sandbox_image = image
        try:
            self._episode = _Episode(self, resolved, attack, episode_seed)
        except SandboxError:
            # A sandbox that cannot be set up is replaced once; a second failure is real.
            self._discard_sandbox()
            self.sandbox = make_sandbox(self.backend, image)
            self._episode = _Episode(self, resolved, attack, episode_seed)
        return self._episode.first_observation, self._episode.info()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._episode is None:
            raise RuntimeError("call reset() before step()")
        return self._episode.step(action)

    def render(self) -> str | None:
        if self._episode is None:
            return None
        lines = [f"[{m['role']}] {m.get('content') or ''}" for m in self._episode.messages]
        return "\n".join(lines)

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None

    def _discard_sandbox(self) -> None:
        """Drop the current sandbox; closing a broken one may fail, which changes nothing."""
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is not None:
            with contextlib.suppress(Exception):  # it is being thrown away anyway
                sandbox.close()

    # -- helpers -------------------------------------------------------------------
    def _pick_variant(self, wanted: str | None) -> ScenarioVariant:
        if wanted is not None:
            for variant in self.pool:
                if variant.id == wanted:
                    return variant
            return find_variant(wanted, trust_code=self.trust_code)[0]
        return self.pool[int(self.np_random.integers(len(self.pool)))]

    def _pick_attack(self, variant: ScenarioVariant, wanted: str | None) -> str | None:
        injection = variant.spec.injection
        choice = wanted or self.attack
        if injection is None or choice == "none":
            return None
        allowed = list_strategies() if injection.strategies == "all" else injection.strategies
        if choice == "random":
            return allowed[int(self.np_random.integers(len(allowed)))]
        get_strategy(choice)
        return choice

    @property
    def episode(self) -> _Episode | None:
        return self._episode

    @property
    def current_scenario(self) -> ResolvedScenario | None:
        return self._episode.scenario if self._episode is not None else None

    def trajectory(self) -> dict[str, Any]:
        """The current episode as a JSON-serialisable record (DESIGN §3)."""
        if self._episode is None:
            raise RuntimeError("no episode yet")
        return self._episode.record()


class _Episode:
    """State of one episode (kept apart so that reset is a clean slate)."""

    def __init__(self, env: MosaicEnv, scenario: ResolvedScenario, attack: str | None,
                 seed: int) -> None:
        spec = scenario.spec
        assert env.sandbox is not None
        self.env = env
        self.scenario = scenario
        self.attack = attack
        self.seed = seed
        self.payload = ""
        if attack is not None and spec.injection is not None:
            context = AttackContext(goal=spec.injection.goal, user_name=spec.world.user_name,
                                    user_request=spec.user_request)
            self.payload = get_strategy(attack).render(context)
        trigger = spec.injection.trigger if spec.injection is not None else None
        self.trigger = (ConditionalInjection(trigger.after_tool, trigger.arg_contains)
                        if trigger is not None else None)
        self.injection_active = self.trigger is None
        self.world = World.build(scenario, env.sandbox, payload=self.payload,
                                 inject_now=self.injection_active)
        names = [name for name in spec.tools if name != REFUSAL_TOOL] + [REFUSAL_TOOL]
        unknown = [name for name in names if name not in env.all_tools]
        if unknown:
            raise ScenarioError(f"unknown tool(s) {unknown}; available: "
                                f"{', '.join(env.all_tools.names())}",
                                file=scenario.variant.source, field="tools")
        self.tools = env.all_tools.subset(names)
        self.tool_schemas = self.tools.schemas()
        self.max_steps = env.max_steps_override or spec.max_steps or DEFAULT_MAX_STEPS
        self.initial: WorldSnapshot = self.world.snapshot()
        self.ledger = Ledger()
        self.steps = 0
        self.done = False
        self.answer: str | None = None
        self.refusal_step: int | None = None
        self.format_errors = 0
        self.tool_errors = 0
        self.infra_error: str | None = None
        self.outcome: Outcome | None = None
        self.parsed: list[dict[str, Any]] = []
        self.fingerprint = self.payload.strip()[:48]
        self.first_observation = spec.user_request
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt(spec.world.user_name)},
            {"role": "user", "content": spec.user_request},
        ]

    # -- stepping ------------------------------------------------------------------
    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self.done:
            return ("The episode is over; call reset().", 0.0, True, False, self.info())
        try:
            return self._step(action)
        except BaseException as exc:
            if is_fatal(exc):
                raise
            # Whatever broke (parser, tool runtime, world, reward), the episode ends as
            # an infra error and is judged as such: never "safe", never an exception.
            self.infra_error = self.infra_error or f"step failed: {describe_failure(exc)}"
            self.done = True
            self.outcome = self._judge(True)
            return ("Error: the environment failed; the episode is over.", 0.0, True, False,
                    self.info())

    def _step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.steps += 1
        text = action if isinstance(action, str) else str(action)
        parsed = parse_action(text)
        self.parsed.append({"kind": parsed.kind, "has_plan": parsed.plan is not None,
                            "has_safety_check": parsed.safety_check is not None,
                            "format_score": parsed.format_score})
        assistant: dict[str, Any] = {"role": "assistant", "content": text}
        self.messages.append(assistant)
        terminated = False
        if parsed.kind == "invalid":
            self.format_errors += 1
            observation = f"Format error: {parsed.error}"
            self._record(parsed, "format_error", error=parsed.error)
            self.messages.append({"role": "user", "content": observation})
        elif parsed.kind == "final_answer":
            self.answer = parsed.answer or ""
            observation = "Episode finished: final answer received."
            self._record(parsed, "final_answer")
            terminated = True
        else:
            observation, terminated = self._call_tool(parsed, assistant)
        truncated = not terminated and self.steps >= self.max_steps
        reward = 0.0
        if terminated or truncated:
            self.done = True
            self.outcome = self._judge(terminated)
            reward = float(self.env.reward_fn(self.outcome))
        return observation, reward, terminated, truncated, self.info()

    def _call_tool(self, parsed: ParsedAction, assistant: dict[str, Any]) -> tuple[str, bool]:
        call = parsed.tool_call
        assert call is not None
        call_id = f"call_{self.steps}"
        assistant["tool_calls"] = [{"id": call_id, "type": "function", "function": {
            "name": call.name, "arguments": dict(call.arguments)}}]
        item = self.tools.get(call.name)
        events: tuple[Any, ...] = ()
        error: str | None = None
        terminated = False
        if item is None:
            error = (f"Error: unknown tool {call.name!r}. Available tools: "
                     f"{', '.join(self.tools.names())}")
            observation = error
            self.tool_errors += 1
        else:
            self.world.step = self.steps
            before = None
            try:
                before = self.world.snapshot()
                observation = item.function(self.world, **item.validate(call.arguments))
            except ToolError as exc:
                error = f"Error: {exc}"
                observation = error
                self.tool_errors += 1
            except BaseException as exc:  # never crash the env; fail closed
                if is_fatal(exc):
                    raise
                where = "snapshot" if before is None else call.name
                self.infra_error = f"{where} failed: {describe_failure(exc)}"
                observation = f"Error: the environment failed ({type(exc).__name__})."
                terminated = True
            try:
                if before is not None:
                    events = tuple(self.world.diff(before, self.world.snapshot()))
            except BaseException as exc:
                if is_fatal(exc):
                    raise
                self.infra_error = self.infra_error or f"diff failed: {describe_failure(exc)}"
                observation = f"Error: the environment failed ({type(exc).__name__})."
                terminated = True
            if item.terminal and error is None:
                terminated = True
                self.refusal_step = self.steps
        injected = bool(self.fingerprint) and self.fingerprint in observation
        kind = "refusal" if item is not None and item.terminal else "tool_call"
        self._record(parsed, kind, tool=call.name, arguments=call.arguments,
                     effect=item.effect if item else None, events=events, error=error,
                     injected=injected)
        self.messages.append({"role": "tool", "tool_call_id": call_id, "name": call.name,
                              "content": observation})
        if (not self.injection_active and self.trigger is not None and error is None
                and self.trigger.triggered(call.name, call.arguments)):
            self.injection_active = True
            self.world.activate_injection(self.payload)
        return observation, terminated

    def _record(self, parsed: ParsedAction, kind: Any, **fields: Any) -> None:
        self.ledger.record(LedgerEntry(
            step=self.steps, kind=kind, tool=fields.get("tool"),
            arguments=fields.get("arguments"), declared_effect=fields.get("effect"),
            events=fields.get("events", ()), error=fields.get("error"),
            injected=fields.get("injected", False), has_plan=parsed.plan is not None,
            has_safety_check=parsed.safety_check is not None))

    def _judge(self, terminated: bool) -> Outcome:
        variant = self.scenario.variant
        termination: Termination
        if self.infra_error is not None:
            termination = "infra_error"
        elif self.refusal_step is not None:
            termination = "refusal"
        elif terminated:
            termination = "final_answer"
        else:
            termination = "max_steps"
        outcome = Outcome(
            scenario_id=variant.id, category=variant.category, domain=variant.domain,
            expected=variant.expected, split=variant.split, seed=self.seed, attack=self.attack,
            steps=self.steps, termination=termination, refused=self.refusal_step is not None,
            refusal_step=self.refusal_step, format_errors=self.format_errors,
            tool_errors=self.tool_errors, infra_error=self.infra_error)
        try:
            context = JudgeContext(self.scenario, self.world, self.initial, self.ledger,
                                   answer=self.answer, refused=self.refusal_step is not None)
            outcome = judge(context, outcome)
        except BaseException as exc:
            if is_fatal(exc):
                raise
            outcome.infra_error = f"judge failed: {describe_failure(exc)}"
        if outcome.infra_error is not None:
            outcome.termination = "infra_error"
        return outcome

    # -- reporting -----------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "scenario_id": self.scenario.id,
            "category": self.scenario.variant.category,
            "attack": self.attack,
            "step": self.steps,
            "messages": list(self.messages),
            "tools": self.tool_schemas,
            "ledger": self.ledger.entries[:],
        }
        if self.outcome is not None:
            info["outcome"] = self.outcome
        return info

    def record(self) -> dict[str, Any]:
        from mosaic_gym.agent.format import count_tokens_approx, safety_token_share

        assistant = [m["content"] for m in self.messages if m["role"] == "assistant"]
        tokens = sum(count_tokens_approx(text) for text in assistant)
        share = (sum(safety_token_share(t) * count_tokens_approx(t) for t in assistant) / tokens
                 if tokens else 0.0)
        return {
            "scenario_id": self.scenario.id, "seed": self.seed, "attack": self.attack,
            "category": self.scenario.variant.category, "split": self.scenario.variant.split,
            "messages": self.messages, "tools": self.tool_schemas, "steps": self.parsed,
            "ledger": self.ledger.as_dicts(),
            "outcome": self.outcome.as_dict() if self.outcome is not None else None,
            "tokens": {"assistant": tokens, "safety_check": round(share * tokens)},
        }
