"""Environments served over OpenEnv, seen from the client side (the ``openenv`` extra).

The server is :mod:`mosaic_gym.bridges.openenv`; this module holds what both ends share (the
wire types: an action is the agent's raw MOSAIC text, an observation the tool result, the
chat so far, the tool schemas and, at the end, the judge's verdict and the whole trajectory
record) and the client side: :class:`MosaicClient` (OpenEnv's ``EnvClient``),
:class:`RemoteMosaicEnv` (the calls of an in-process environment that the rollout driver
uses: ``reset``, ``step``, ``finish``, ``trajectory``) and :class:`RemoteTRLEnv` (the calls of
:class:`~mosaic_gym.train.trl_env.MosaicTRLEnv`). A recipe's ``env.remote: URL`` makes the GRPO
rollout step :class:`RemoteMosaicEnv` instances instead of in-process ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

try:
    from openenv.core import EnvClient
    from openenv.core.client_types import StepResult
    from openenv.core.env_server.types import Action, Observation, State
    from pydantic import Field
except ImportError as exc:  # pragma: no cover - exercised without the extra
    from mosaic_gym.errors import MissingExtraError

    raise MissingExtraError("openenv", "openenv", "remote environments (env.remote)") from exc

from mosaic_gym.core.trajectory import Trajectory


class MosaicAction(Action):
    """One agent turn: the raw MOSAIC text (plan, optional safety check, one action)."""

    text: str = Field(default="", description="The assistant turn as written by the model.")
    truncate: bool = Field(default=False, description="End the episode now, judged as it "
                                                      "stands (the trainer's context is full).")


class MosaicObservation(Observation):
    """What the agent sees after a reset or a step, and the verdict at the end."""

    text: str = Field(default="", description="The tool result (or the user request).")
    scenario_id: str = Field(default="", description="The scenario variant being played.")
    messages: list[dict[str, Any]] = Field(default_factory=list,
                                           description="The chat so far (OpenAI format).")
    tools: list[dict[str, Any]] = Field(default_factory=list,
                                        description="The tool schemas (OpenAI format).")
    truncated: bool = Field(default=False, description="Ended by the step limit.")
    outcome: dict[str, Any] | None = Field(default=None,
                                           description="The judge's verdict, at the end.")
    trajectory: dict[str, Any] | None = Field(default=None,
                                              description="The whole record, at the end.")


class MosaicState(State):
    scenario_id: str | None = None
    attack: str | None = None
    seed: int | None = None


class MosaicClient(EnvClient[MosaicAction, MosaicObservation, MosaicState]):
    """OpenEnv client of a mosaic server (``MosaicClient(base_url=URL).sync()`` for sync use)."""

    def _step_payload(self, action: MosaicAction) -> dict[str, Any]:
        payload: dict[str, Any] = {"text": action.text}
        if action.truncate:
            payload["truncate"] = True
        return payload

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[MosaicObservation]:
        data = dict(payload.get("observation") or {})
        data.pop("metadata", None)
        observation = MosaicObservation(**data, done=bool(payload.get("done", False)),
                                        reward=payload.get("reward"),
                                        metadata=payload.get("metadata") or {})
        return StepResult(observation=observation, reward=payload.get("reward"),
                          done=bool(payload.get("done", False)))

    def _parse_state(self, payload: dict[str, Any]) -> MosaicState:
        return MosaicState(**payload)


class RemoteMosaicEnv:
    """A served mosaic environment with the calls of the in-process one (Gymnasium style).

    ``info`` holds ``messages``, ``tools`` and ``scenario_id`` (and ``outcome`` at the end), as
    the in-process environment's does; the ledger stays on the server, in the trajectory.
    """

    def __init__(self, url: str, *, message_timeout_s: float = 120.0) -> None:
        self.url = url
        self._client = MosaicClient(base_url=url, message_timeout_s=message_timeout_s).sync()
        self._client.connect()
        self._last: MosaicObservation | None = None
        self.current_scenario = None  # the resolved scenario lives on the server

    @staticmethod
    def _info(observation: MosaicObservation) -> dict[str, Any]:
        info: dict[str, Any] = {"messages": observation.messages, "tools": observation.tools,
                                "scenario_id": observation.scenario_id}
        if observation.outcome is not None:
            info["outcome"] = observation.outcome
        return info

    def reset(self, seed: int | None = None,
              options: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        result = self._client.reset(seed=seed, **dict(options or {}))
        self._last = result.observation
        return result.observation.text, self._info(result.observation)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        result = self._client.step(MosaicAction(text=action))
        observation = result.observation
        self._last = observation
        truncated = observation.truncated
        terminated = bool(result.done) and not truncated
        return (observation.text, float(result.reward or 0.0), terminated, truncated,
                self._info(observation))

    @property
    def unwrapped(self) -> RemoteMosaicEnv:
        """Itself (the rollout driver asks every environment for its unwrapped form)."""
        return self

    def finish(self, termination: str = "max_steps") -> dict[str, Any]:
        """End the remote episode now, judged as it stands (``MosaicEnv.finish``)."""
        if self._last is not None and self._last.trajectory is not None:
            return self._info(self._last)
        result = self._client.step(MosaicAction(truncate=True))
        self._last = result.observation
        return self._info(result.observation)

    def trajectory(self) -> Trajectory:
        """The record of the ended remote episode (judged on the server)."""
        if self._last is None or self._last.trajectory is None:
            raise RuntimeError("the remote episode has not ended yet")
        return Trajectory.load(self._last.trajectory)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteMosaicEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteTRLEnv:
    """:class:`~mosaic_gym.train.trl_env.MosaicTRLEnv`'s calls on a served environment.

    The GRPO rollout builds its dataset locally (the opening chat of each episode) and steps
    these instead of in-process environments when a recipe sets ``env.remote``. The server
    must serve the same scenario library: a reset whose opening chat differs from what the
    local library gives is reported (``RuntimeError``), because the model would otherwise be
    trained on prompts that are not the episodes it plays.
    """

    def __init__(self, url: str) -> None:
        self._remote = RemoteMosaicEnv(url)
        self._info: dict[str, Any] | None = None
        self._done = False
        self._reward: float | None = None
        self.key: dict[str, Any] | None = None

    def reset(self, *, scenario_id: str, attack: str | None = None, seed: int = 0,
              **_row: Any) -> None:
        _, info = self._remote.reset(seed=int(seed), options={"scenario": scenario_id,
                                                              "attack": attack or "none"})
        if info.get("scenario_id") != scenario_id:
            raise RuntimeError(f"the server at {self._remote.url} played "
                               f"{info.get('scenario_id')!r} for {scenario_id!r}: does it "
                               "serve the same scenario library?")
        self._info, self._done, self._reward = info, False, None
        self.key = {"scenario_id": scenario_id, "attack": attack, "seed": int(seed)}

    def _require(self) -> dict[str, Any]:
        if self._info is None:
            raise RuntimeError("call reset() first")
        return self._info

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self._require()["messages"])

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self._require()["tools"])

    @property
    def done(self) -> bool:
        return self._done

    def act(self, text: str) -> bool:
        self._require()
        if self._done:
            raise RuntimeError("the episode is over; reset() first")
        _, reward, terminated, truncated, info = self._remote.step(text)
        self._info = info
        if terminated or truncated:
            self._done, self._reward = True, float(reward)
        return self._done

    def truncate(self) -> None:
        self._require()
        if self._done:
            return
        self._info = self._remote.finish("max_steps")
        record = self._remote.trajectory()
        outcome = record.outcome
        self._done = True
        self._reward = (-1.0 if outcome is None or not outcome.safe
                        else 1.0 if outcome.correct else 0.0)

    def get_reward(self) -> float:
        if not self._done or self._reward is None:
            raise RuntimeError("get_reward() before the episode ended")
        return self._reward

    def trajectory(self) -> Trajectory:
        return self._remote.trajectory()

    def close(self) -> None:
        self._remote.close()
