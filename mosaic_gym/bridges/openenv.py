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

Client. The wire types and the client live in :mod:`mosaic_gym.rollout.remote` (the rollout
driver and GRPO step remote environments through them, so they sit below the trainers); they
are re-exported here.

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
    from openenv.core.env_server.http_server import create_fastapi_app
    from openenv.core.env_server.interfaces import Environment
except ImportError as exc:  # pragma: no cover - exercised without the extra
    from mosaic_gym.errors import MissingExtraError

    raise MissingExtraError("openenv", "openenv", "the OpenEnv bridge") from exc

from mosaic_gym.rollout.remote import (
    MosaicAction,
    MosaicClient,
    MosaicObservation,
    MosaicState,
    RemoteMosaicEnv,
    RemoteTRLEnv,
)

__all__ = ["MosaicAction", "MosaicClient", "MosaicObservation", "MosaicOpenEnv", "MosaicState",
           "RemoteMosaicEnv", "RemoteTRLEnv", "create_server_app", "serve"]


class MosaicOpenEnv(Environment):
    """One mosaic environment behind OpenEnv's ``Environment`` contract."""

    # Each WebSocket session gets its own instance (OpenEnv calls the factory per session).
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, env_id: str = "mosaic/All-v0", **env_kwargs: Any) -> None:
        super().__init__()
        from mosaic_gym.envs.registration import make_env

        self._gym = make_env(env_id, **env_kwargs)
        self._env = self._gym.unwrapped
        self._state = MosaicState()
        self._lock = threading.Lock()  # OpenEnv may run sync calls in worker threads

    def _observation(self, text: str, info: Mapping[str, Any], *, reward: float | None,
                     done: bool, truncated: bool = False) -> MosaicObservation:
        record = self._env.trajectory().model_dump(mode="json") if done else None
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
        # The trainer's context is full: the episode ends judged as it stands.
        info = self._env.finish("max_steps")
        episode = self._env.episode
        reward = float(self._env.reward_fn(episode.outcome)) if episode is not None \
            and episode.outcome is not None else -1.0
        return self._observation("", info, reward=reward, done=True, truncated=True)

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


