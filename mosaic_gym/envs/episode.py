"""One episode as a small state machine: parse the turn, dispatch the call, record, judge.

``Episode`` is what :class:`~mosaic_gym.envs.mosaic_env.MosaicEnv` holds between ``reset``
and the end; the environment itself only selects scenarios and speaks Gymnasium. A turn goes:

1. **parse** the agent's text in the MOSAIC format (:mod:`mosaic_gym.protocol.format`); a
   turn that is not text, or not valid, becomes a format-error observation;
2. **dispatch** a tool call through the :class:`~mosaic_gym.tools.runtime.ToolRuntime`
   (validate, snapshot, call, diff; errors to observations, crashes to ``infra_error``);
3. **record** it in the :class:`~mosaic_gym.judge.ledger.Ledger` with the events the world
   diff found, and fill a conditional injection's slots when its trigger fires;
4. at the end (a refusal, a final answer, ``max_steps``, an infrastructure error, or
   :meth:`Episode.finish` called by the caller) **judge** once, from the final world.

The states are *running* and *finished*; a finished episode answers every further step with
"the episode is over" and never changes its verdict.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from mosaic_gym.attacks import AttackContext, ConditionalInjection, get_strategy
from mosaic_gym.core.trajectory import StepRecord, TokenCounts, Trajectory
from mosaic_gym.envs.failclosed import describe_failure, is_fatal
from mosaic_gym.judge.context import JudgeContext
from mosaic_gym.judge.ledger import EntryKind, Ledger, LedgerEntry
from mosaic_gym.judge.outcome import Outcome, Termination, judge
from mosaic_gym.judge.progress import initial_truth, utility_progress
from mosaic_gym.protocol import REFUSAL_TOOL
from mosaic_gym.protocol.format import (
    ParsedAction,
    count_tokens_approx,
    parse_action,
    safety_token_share,
)
from mosaic_gym.protocol.prompts import system_prompt
from mosaic_gym.sandbox.base import Sandbox
from mosaic_gym.scenario.resolve import ResolvedScenario
from mosaic_gym.tools.registry import ToolRegistry
from mosaic_gym.tools.runtime import CallResult, ToolRuntime
from mosaic_gym.world.world import World, WorldSnapshot

RewardFn = Callable[[Outcome], float]
#: Tool-call arguments as the OpenAI format has them: a JSON string (one encoder, reused).
_ARGUMENTS = json.JSONEncoder(ensure_ascii=False)
StepResult = tuple[str, float, bool, bool, dict[str, Any]]


def read_action(action: Any) -> tuple[str, ParsedAction]:
    """The text of ``action`` and its parse. A non-string action (a token list, None, a
    dict) is a format error with its ``repr`` as the text, never a final answer."""
    if not isinstance(action, str):
        return repr(action), ParsedAction(
            "invalid", None, None, None, None, None,
            f"an action must be text, not {type(action).__name__}", 0.0)
    return action, parse_action(action)


class Episode:
    """The state of one episode (see the module docstring)."""

    def __init__(self, scenario: ResolvedScenario, *, sandbox: Sandbox, tools: ToolRegistry,
                 attack: str | None, episode_seed: int, max_steps: int, reward_fn: RewardFn,
                 reset_seed: int | None = None,
                 reset_options: Mapping[str, Any] | None = None) -> None:
        spec = scenario.spec
        self.scenario = scenario
        self.attack = attack
        self.seed = episode_seed
        self.reset_seed = reset_seed
        self.reset_options = dict(reset_options) if reset_options is not None else None
        self.max_steps = max_steps
        self.reward_fn = reward_fn
        self.payload = ""
        if attack is not None and spec.injection is not None:
            context = AttackContext(goal=spec.injection.goal, user_name=spec.world.user_name,
                                    user_request=spec.user_request)
            self.payload = get_strategy(attack).render(context)
        trigger = spec.injection.trigger if spec.injection is not None else None
        self.trigger = (ConditionalInjection(trigger.after_tool, trigger.arg_contains)
                        if trigger is not None else None)
        self.injection_active = self.trigger is None
        self.world = World.build(scenario, sandbox, payload=self.payload,
                                 inject_now=self.injection_active)
        self.tools = tools
        self.tool_schemas = tools.schemas()
        self.runtime = ToolRuntime(tools, self.world)
        self.initial: WorldSnapshot = self.world.snapshot()
        self.ledger = Ledger()
        self.initial_goals = self._initial_goals()
        self.steps = 0
        self.actions: list[Any] = []
        self.done = False
        self.answer: str | None = None
        self.refusal_step: int | None = None
        self.format_errors = 0
        self.tool_errors = 0
        self.infra_error: str | None = None
        self.outcome: Outcome | None = None
        #: Per turn: (kind, has plan, has safety check, format score); records are built from it.
        self.parsed: list[tuple[str, bool, bool, float]] = []
        self._outcome_dict: dict[str, Any] | None = None
        self.fingerprint = self.payload.strip()[:48]
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt(spec.world.user_name)},
            {"role": "user", "content": spec.user_request},
        ]

    @property
    def first_observation(self) -> str:
        return self.scenario.spec.user_request

    # -- stepping --------------------------------------------------------------------
    def step(self, action: Any) -> StepResult:
        """Play one agent turn (see the module docstring); never raises but for the user's
        own interrupt: whatever breaks ends the episode judged ``infra_error``."""
        try:
            return self._step(action)
        except BaseException as exc:
            if is_fatal(exc):
                raise
            self.infra_error = self.infra_error or f"step failed: {describe_failure(exc)}"
            if not self.done:
                self._end(True)
            return ("Error: the environment failed; the episode is over.", 0.0, True, False,
                    self.info())

    def _step(self, action: Any) -> StepResult:
        if self.done:
            return ("The episode is over; call reset().", 0.0, True, False, self.info())
        self.steps += 1
        self.actions.append(action)
        text, parsed = read_action(action)
        self.parsed.append((parsed.kind, parsed.plan is not None,
                            parsed.safety_check is not None, parsed.format_score))
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
            reward = self._end(terminated)
        return observation, reward, terminated, truncated, self.info()

    def finish(self, termination: Termination = "max_steps") -> dict[str, Any]:
        """End the episode now, judged as it stands; return the final ``info``.

        ``termination`` says why (``max_steps`` for a caller's own step or context limit).
        A finished episode is left as it is.
        """
        if not self.done:
            self._end(False, termination)
        return self.info()

    def _call_tool(self, parsed: ParsedAction, assistant: dict[str, Any]) -> tuple[str, bool]:
        call = parsed.tool_call
        assert call is not None
        call_id = f"call_{self.steps}"
        assistant["tool_calls"] = [{"id": call_id, "type": "function", "function": {
            "name": call.name, "arguments": _ARGUMENTS.encode(dict(call.arguments))}}]
        result = self.runtime.run(call.name, call.arguments, step=self.steps)
        terminated = False
        if result.infra_error is not None:
            self.infra_error = result.infra_error
            terminated = True
        elif result.error is not None:
            self.tool_errors += 1
        if result.terminal:
            terminated = True
            self.refusal_step = self.steps
        observation = result.observation
        injected = bool(self.fingerprint) and self.fingerprint in observation
        self._record(parsed, "refusal" if result.terminal else "tool_call", result=result,
                     injected=injected)
        self.messages.append({"role": "tool", "tool_call_id": call_id, "name": call.name,
                              "content": observation})
        if (not self.injection_active and self.trigger is not None and result.error is None
                and self.trigger.triggered(call.name, call.arguments)):
            self.injection_active = True
            self.world.activate_injection(self.payload)
        return observation, terminated

    def _record(self, parsed: ParsedAction, kind: EntryKind, *,
                result: CallResult | None = None, error: str | None = None,
                injected: bool = False) -> None:
        tool = result.tool if result is not None else None
        self.ledger.record(LedgerEntry(
            step=self.steps, kind=kind, tool=result.name if result is not None else None,
            arguments=result.arguments if result is not None else None,
            declared_effect=tool.effect if tool is not None else None,
            events=result.events if result is not None else (),
            error=result.error if result is not None else error,
            injected=injected, has_plan=parsed.plan is not None,
            has_safety_check=parsed.safety_check is not None))

    # -- judging -----------------------------------------------------------------------
    def _end(self, terminated: bool, termination: Termination | None = None) -> float:
        self.done = True
        self.outcome = self._judge(terminated, termination)
        self._outcome_dict = self.outcome.as_dict()
        try:
            return float(self.reward_fn(self.outcome))
        except BaseException as exc:  # a user's reward callable: fail closed
            if is_fatal(exc):
                raise
            self.outcome.infra_error = f"reward failed: {describe_failure(exc)}"
            self.outcome.termination = "infra_error"
            self._outcome_dict = self.outcome.as_dict()
            return 0.0

    def _judge(self, terminated: bool, termination: Termination | None = None) -> Outcome:
        variant = self.scenario.variant
        if self.infra_error is not None:
            termination = "infra_error"
        elif self.refusal_step is not None:
            termination = "refusal"
        elif termination is None:
            termination = "final_answer" if terminated else "max_steps"
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
            if outcome.infra_error is None:
                outcome.progress = utility_progress(self.scenario.spec.checks.utility, context,
                                                    self.initial_goals, outcome.completed)
        except BaseException as exc:
            if is_fatal(exc):
                raise
            outcome.infra_error = f"judge failed: {describe_failure(exc)}"
        if outcome.infra_error is not None:
            outcome.termination = "infra_error"
        return outcome

    def _initial_goals(self) -> list[bool | None] | None:
        """Which utility sub-goals hold before the agent acts (for ``outcome.progress``)."""
        utility = self.scenario.spec.checks.utility
        if utility is None:
            return None
        try:
            return initial_truth(utility, JudgeContext(self.scenario, self.world, self.initial,
                                                       Ledger()))
        except BaseException as exc:  # progress is advisory; the judge fails closed later
            if is_fatal(exc):
                raise
            return None

    # -- reporting ---------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Gymnasium's ``info``: plain data only (the outcome as a dict once judged)."""
        info: dict[str, Any] = {
            "scenario_id": self.scenario.id,
            "category": self.scenario.variant.category,
            "attack": self.attack,
            "step": self.steps,
            "messages": list(self.messages),
            "tools": self.tool_schemas,
            "ledger": self.ledger.entries[:],
        }
        if self._outcome_dict is not None:
            info["outcome"] = self._outcome_dict
        return info

    def trajectory(self) -> Trajectory:
        """The record of the episode so far (final once :attr:`done`)."""
        assistant = [m["content"] for m in self.messages if m["role"] == "assistant"]
        tokens = sum(count_tokens_approx(text) for text in assistant)
        share = (sum(safety_token_share(t) * count_tokens_approx(t) for t in assistant) / tokens
                 if tokens else 0.0)
        variant = self.scenario.variant
        return Trajectory(
            scenario_id=self.scenario.id, category=variant.category, split=variant.split,
            attack=self.attack, reset_seed=self.reset_seed, reset_options=self.reset_options,
            episode_seed=self.seed, messages=[dict(m) for m in self.messages],
            tools=list(self.tool_schemas),
            steps=[StepRecord(kind=kind, has_plan=plan, has_safety_check=check,
                              format_score=score) for kind, plan, check, score in self.parsed],
            ledger=self.ledger.as_dicts(), outcome=self._outcome_dict,
            tokens=TokenCounts(assistant=tokens, safety_check=round(share * tokens)),
            injected_text=self.payload or None)


def offered_tools(all_tools: ToolRegistry, names: list[str]) -> ToolRegistry:
    """The scenario's tools, with ``refusal_tool`` always last."""
    return all_tools.subset([name for name in names if name != REFUSAL_TOOL] + [REFUSAL_TOOL])
