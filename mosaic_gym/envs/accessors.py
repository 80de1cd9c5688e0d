"""The public window onto a running episode, for tests and tools outside the environment.

Property tests need the ground truth the judge sees: the episode's secrets, the world state,
the ledger, what each offered tool promises to do. Before this module they reached it through
``env.episode.world._contents``-style private paths, which every reshaping of the environment
broke. :class:`EpisodeAccessors` is mixed into :class:`~mosaic_gym.envs.mosaic_env.MosaicEnv`
and is the supported set; everything it returns is read-only or a copy, so a test cannot steer
the episode by inspecting it.

Through ``gym.make`` use ``env.unwrapped`` (Gymnasium wrappers no longer forward attributes).
Every accessor raises :class:`NoEpisodeError` before the first ``reset()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from mosaic_gym.core.events import Event, ToolClass

if TYPE_CHECKING:
    from mosaic_gym.core.egress import Egress
    from mosaic_gym.judge.ledger import Ledger
    from mosaic_gym.tools import ToolRegistry
    from mosaic_gym.world.world import WorldSnapshot


class NoEpisodeError(RuntimeError):
    """An episode accessor was used before ``reset()``."""


class EpisodeAccessors:
    """Read-only accessors of the current episode (see the module docstring)."""

    _episode: Any
    all_tools: ToolRegistry

    def _current(self) -> Any:
        if self._episode is None:
            raise NoEpisodeError("no episode yet: call reset() first")
        return self._episode

    @property
    def secrets(self) -> Mapping[str, str]:
        """Every secret of the episode by name, with this seed's values."""
        return MappingProxyType(dict(self._current().scenario.secrets))

    @property
    def protected_secrets(self) -> Mapping[str, str]:
        """The secrets the judge reports when they leave (``checks.protect``)."""
        return MappingProxyType(self._current().scenario.protected_secrets)

    @property
    def ledger(self) -> Ledger:
        """The episode's ledger (append-only; entries are frozen)."""
        ledger: Ledger = self._current().ledger
        return ledger

    @property
    def egress(self) -> tuple[Egress, ...]:
        """Everything that left the user's control so far, in order (what leaks are found in)."""
        return tuple(self._current().world.egress)

    def world_snapshot(self) -> WorldSnapshot:
        """The whole world now: files, mail, vault, bank, web requests, contacts (immutable)."""
        snapshot: WorldSnapshot = self._current().world.snapshot()
        return snapshot

    @property
    def initial_snapshot(self) -> WorldSnapshot:
        """The world as ``reset()`` built it."""
        snapshot: WorldSnapshot = self._current().initial
        return snapshot

    def world_diff(self, before: WorldSnapshot | None = None,
                   after: WorldSnapshot | None = None) -> list[Event]:
        """Events between two snapshots (default: from the initial world to now)."""
        episode = self._current()
        return list(episode.world.diff(before if before is not None else episode.initial,
                                       after if after is not None else episode.world.snapshot()))

    @property
    def injection_targets(self) -> frozenset[str]:
        """Event targets (as in :class:`~mosaic_gym.core.events.Event`) of the places where
        the environment itself puts the attack payload: a conditional injection fills them
        mid-episode, which is not the agent's doing. Pages are not state, so never listed.
        """
        prefixes = {"file": "", "mail": "mail-id:", "contact": "contact:"}
        return frozenset(prefixes[site.kind] + site.key
                         for site in self._current().world.injection_sites
                         if site.kind in prefixes)

    @property
    def offered_tools(self) -> ToolRegistry:
        """The tools this episode offers (``refusal_tool`` last)."""
        tools: ToolRegistry = self._current().tools
        return tools

    @property
    def declared_effects(self) -> Mapping[str, ToolClass]:
        """Each offered tool's declared class, by name."""
        return MappingProxyType({name: item.effect
                                 for name, item in self._current().tools.items()})

    @property
    def max_steps(self) -> int:
        """Steps after which this episode is truncated."""
        return int(self._current().max_steps)

    def safety_class(self, tool: str) -> ToolClass:
        """The declared class of any standard tool (``read``, ``write``, ``irreversible``,
        ``egress`` or ``terminal``); raises ``KeyError`` naming the known tools otherwise.
        """
        item = self.all_tools.get(tool)
        if item is None:
            raise KeyError(f"unknown tool {tool!r}; known: {', '.join(self.all_tools)}")
        return item.effect
