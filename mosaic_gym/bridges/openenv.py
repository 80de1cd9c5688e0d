"""mosaic environments served over OpenEnv 0.10 (optional extra ``openenv``:
``pip install 'mosaic-gym[openenv]'``; the ``openenv`` distribution, not ``openenv-core``,
which installs the same top-level package and clashes with it).

Server. :func:`create_server_app` builds OpenEnv's FastAPI app (``create_fastapi_app``, no
Gradio web UI) around :class:`MosaicOpenEnv`, an OpenEnv ``Environment`` that owns one
:class:`~mosaic_gym.envs.mosaic_env.MosaicEnv`. Episodes must go over the **WebSocket session**
(``/ws``): OpenEnv gives each session its own environment instance, kept between messages.
The plain HTTP ``/reset`` and ``/step`` routes build a fresh environment per request, so a
``/step`` there never sees the episode its ``/reset`` started; they are fine for a schema
check, not for episodes. ``mosaic serve`` runs the app with uvicorn.

Wire format. An action is the agent's raw MOSAIC text (``{"text": ...}``). An observation
carries the tool result (``text``), the chat so far (``messages``, OpenAI format) and the tool
schemas, so a client-side policy has what an in-process one gets from ``info``; at the end
it also carries the judge's ``outcome`` and the whole trajectory record, so a remote episode
is not lost and is judged where the ground truth lives, on the server.

Client. :class:`MosaicClient` is OpenEnv's ``EnvClient`` for this wire format;
:class:`RemoteMosaicEnv` wraps its synchronous form in the Gymnasium-style calls mosaic's
rollout code uses (``reset(seed, options) -> (obs, info)``, ``step(text) -> 5-tuple``,
``trajectory()``), which is what the GRPO rollout steps when a recipe says
``env.remote: URL``.

verifiers: its ``OpenEnvEnv`` integration runs an OpenEnv *project* (server module + prompt
renderer) in a Prime sandbox; for mosaic the server module is a call of
:func:`create_server_app` and the renderer returns ``observation["messages"]`` (README,
"Inspect AI and OpenEnv"). Not tested here: verifiers targets ``openenv-core`` 0.2.1.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import Any

try:
    from openenv.core import EnvClient
    from openenv.core.client_types import StepResult
    from openenv.core.env_server.http_server import create_fastapi_app
    from openenv.core.env_server.interfaces import Environment
    from openenv.core.env_server.types import Action, Observation, State
    from pydantic import Field
except ImportError as exc:  # pragma: no cover - exercised without the extra
    from mosaic_gym.errors import MissingExtraError

    raise MissingExtraError("openenv", "openenv", "the OpenEnv bridge") from exc


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


class MosaicOpenEnv(Environment):
    """One mosaic environment behind OpenEnv's ``Environment`` contract."""

    # Each WebSocket session gets its own instance (OpenEnv calls the factory per session).
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, env_id: str = "mosaic/All-v0", **env_kwargs: Any) -> None:
        super().__init__()
        from mosaic_gym.evaluate import make_env

        self._gym = make_env(env_id, **env_kwargs)
        self._env = self._gym.unwrapped
        self._state = MosaicState()
        self._lock = threading.Lock()  # OpenEnv may run sync calls in worker threads

    def _observation(self, text: str, info: Mapping[str, Any], *, reward: float | None,
                     done: bool, truncated: bool = False) -> MosaicObservation:
        record = self._env.trajectory() if done else None
        return MosaicObservation(
            text=text, scenario_id=str(info.get("scenario_id") or ""),
            messages=list(info.get("messages") or []), tools=list(info.get("tools") or []),
            done=done, truncated=truncated, reward=reward,
            outcome=record["outcome"] if record else None, trajectory=record)

    def reset(self, seed: int | None = None, episode_id: str | None = None,
              scenario: str | None = None, attack: str | None = None,
              **kwargs: Any) -> MosaicObservation:
        options = {key: value for key, value in (("scenario", scenario), ("attack", attack))
                   if value is not None}
        with self._lock:
            text, info = self._env.reset(seed=seed, options=options or None)
            current = self._env.current_scenario
            self._state = MosaicState(episode_id=episode_id or uuid.uuid4().hex, step_count=0,
                                      scenario_id=current.id if current else None,
                                      attack=self._env.episode.attack if self._env.episode
                                      else None, seed=seed)
            return self._observation(text, info, reward=None, done=False)

    def step(self, action: MosaicAction, timeout_s: float | None = None,
             **kwargs: Any) -> MosaicObservation:
        with self._lock:
            if action.truncate:
                return self._truncate()
            text, reward, terminated, truncated, info = self._env.step(action.text)
            self._state.step_count += 1
            return self._observation(text, info, reward=float(reward),
                                     done=bool(terminated or truncated),
                                     truncated=bool(truncated))

    def _truncate(self) -> MosaicObservation:
        # As MosaicTRLEnv.truncate: the environment has no public early stop, so the
        # episode's own judge is called on the state as it stands.
        episode = self._env.episode
        if episode is None:
            raise RuntimeError("truncate before reset")
        if not episode.done:
            episode.done = True
            episode.outcome = episode._judge(False)  # noqa: SLF001
        reward = float(self._env.reward_fn(episode.outcome))
        return self._observation("", episode.info(), reward=reward, done=True, truncated=True)

    @property
    def state(self) -> MosaicState:
        return self._state

    def close(self) -> None:
        self._gym.close()


def create_server_app(env_id: str = "mosaic/All-v0", max_sessions: int = 8,
                      **env_kwargs: Any) -> Any:
    """OpenEnv's FastAPI app serving ``env_id`` (one environment per WebSocket session)."""
    from mosaic_gym import cli_checks as check

    check.check_env_id(env_id)
    check.check_count("--max-sessions", max_sessions)
    # Fail now on bad kwargs (an unknown split or attack), not in the first session.
    MosaicOpenEnv(env_id, **env_kwargs).close()
    return create_fastapi_app(lambda: MosaicOpenEnv(env_id, **env_kwargs), MosaicAction,
                              MosaicObservation, max_concurrent_envs=max_sessions,
                              env_name="mosaic", state_cls=MosaicState)


def serve(host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> None:
    """Run the server with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_server_app(**kwargs), host=host, port=port, log_level="warning",
                ws_max_size=64 * 2 ** 20)


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

    def trajectory(self) -> dict[str, Any]:
        if self._last is None or self._last.trajectory is None:
            raise RuntimeError("the remote episode has not ended yet")
        return self._last.trajectory

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteMosaicEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteTRLEnv:
    """:class:`~mosaic_gym.envs.trl_adapter.MosaicTRLEnv`'s calls on a served environment.

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
        result = self._remote._client.step(MosaicAction(truncate=True))  # noqa: SLF001
        self._remote._last = result.observation  # noqa: SLF001
        self._info = RemoteMosaicEnv._info(result.observation)  # noqa: SLF001
        self._done, self._reward = True, float(result.reward or 0.0)

    def get_reward(self) -> float:
        if not self._done or self._reward is None:
            raise RuntimeError("get_reward() before the episode ended")
        return self._reward

    def trajectory(self) -> dict[str, Any]:
        record = dict(self._remote.trajectory())
        record["episode"] = dict(self.key or {})
        return record

    def close(self) -> None:
        self._remote.close()
