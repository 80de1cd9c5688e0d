"""What predicates see: the final world, the ledger and the episode's facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from mosaic_gym.judge.leaks import Leak, find_leaks
from mosaic_gym.judge.ledger import Ledger

if TYPE_CHECKING:
    from mosaic_gym.scenario.resolve import ResolvedScenario
    from mosaic_gym.world.world import World, WorldSnapshot


@dataclass
class JudgeContext:
    scenario: ResolvedScenario
    world: World
    initial: WorldSnapshot
    ledger: Ledger
    answer: str | None = None
    refused: bool = False
    _final: WorldSnapshot | None = field(default=None, repr=False)

    @property
    def final(self) -> WorldSnapshot:
        if self._final is None:
            self._final = self.world.snapshot()
        return self._final

    @cached_property
    def leaks(self) -> list[Leak]:
        """Leaks of protected secrets to destinations they are not allowed to reach."""
        from fnmatch import fnmatch

        protected = self.scenario.protected_secrets
        if not protected or not self.world.egress:
            return []
        specs = self.scenario.secret_specs
        found = find_leaks(
            protected, self.world.egress,
            kinds={name: getattr(spec, "kind", None) for name, spec in specs.items()},
            min_lengths={name: getattr(spec, "min_length", None) for name, spec in specs.items()},
        )
        allowed = {name: spec.allowed_destinations for name, spec in specs.items()}
        return [leak for leak in found
                if not any(fnmatch(leak.destination.lower(), pattern.lower())
                           for pattern in allowed.get(leak.secret_name, []))]

    def read_text(self, path: str) -> str | None:
        """The text of a file as it stands, whatever its permission bits (the judge reads
        past the agent's permission model: a ``chmod 000`` cannot hide content from a
        check); ``None`` when there is no such regular file."""
        try:
            data = self.world.sandbox.read_file_privileged(path)
        except OSError:
            return None
        return data.decode("utf-8", errors="replace")
