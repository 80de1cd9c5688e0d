"""DPO pairs from collected groups: the oracle ranks each group, strict preferences become rows.

Rows follow TRL's *conversational preference* format with tools::

    {"prompt":   [{"role": "system", ...}, {"role": "user", ...}, ...shared turns],
     "chosen":   [{"role": "assistant", ...}, {"role": "tool", ...}, ...],
     "rejected": [{"role": "assistant", ...}, ...],
     "tools":    "<JSON list of the tool schemas>",
     ...metadata columns: scenario_id, attack, seed, category, group_key, margin}

How a multi-turn rollout becomes a row
--------------------------------------
Both rollouts of a pair start from the same reset seed, so they share the system prompt,
the user request and, since the environment is deterministic, every turn up to the first
assistant turn where they differ. ``prompt`` is that longest shared prefix of messages
(at least system + user), cut back so that it ends on a user or tool message; ``chosen`` and
``rejected`` are the rest of each rollout (``continuation="full"``): its assistant turns in the
raw MOSAIC text (``<think>``, ``<safety_thoughts>``, ``<tool_call>`` or answer) interleaved with
the ``tool`` messages the environment returned. With ``continuation="first_turn"`` they are
only the first differing assistant turn: a one-step preference with no tool message in it.

Messages keep only ``role`` and ``content``: the assistant content already holds the tool call
as text, so the structured ``tool_calls`` copy is dropped (a template rendering both would
show the call twice), and a uniform shape keeps Arrow from merging per-message schemas.
``tools`` is a JSON string for the same reason (the tool schemas differ by task); TRL's
DPOTrainer accepts it (it ``json.loads`` a string ``tools`` column before templating).

Tool outputs are not trained on
-------------------------------
TRL 1.16's DPOTrainer renders ``prompt`` (with ``add_generation_prompt=True``) and
``prompt + chosen`` / ``prompt + rejected`` through the chat template with the row's
``tools``, takes the completion to start where the token sequences diverge, and its
``DataCollatorForPreference`` sets ``completion_mask = 1`` on *every* completion token: DPO has
no assistant-only masking (unlike ``SFTConfig.assistant_only_loss``). With stock TRL, the
``tool`` messages inside a ``continuation="full"`` completion would therefore be scored. Two
ways around it, both supported:

* ``continuation="full"`` with the ``MaskedDPOTrainer`` of :mod:`mosaic_gym.train.dpo`,
  which tokenizes each row with a loss mask (1 on the agent's own turns, 0 on tool results
  and template tokens) and multiplies TRL's completion mask by it;
* ``continuation="first_turn"`` with any DPOTrainer: the completions are single assistant
  turns, so there is no tool output in them to mask.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from mosaic_gym.core.trajectory import Trajectory
from mosaic_gym.judge.preference import PreferenceOracle

Message = dict[str, str]


def _plain(message: Mapping[str, Any]) -> Message:
    role = message.get("role")
    if role not in ("system", "user", "assistant", "tool"):
        raise ValueError(f"unknown chat role {role!r}")
    content = message.get("content")
    return {"role": str(role), "content": "" if content is None else str(content)}


def shared_prefix(a: Sequence[Message], b: Sequence[Message]) -> int:
    """Length of the prompt of a pair: the common prefix of two chats, ending on a user or
    tool message (so that the completions start with an assistant turn)."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    while n > 0 and a[n - 1]["role"] == "assistant":
        n -= 1
    if n < 2:
        raise ValueError("the two rollouts do not share their system and user messages: "
                         "are they from the same group?")
    return n


def _rollouts(group: Any) -> list[Trajectory]:
    if isinstance(group, Mapping):
        if "rollouts" not in group:
            raise ValueError("a group must be a collection line with 'rollouts' or a list of "
                             "trajectory records")
        return [Trajectory.load(r) for r in group["rollouts"]]
    return [Trajectory.load(r) for r in group]


def build_dpo_pairs(groups: Iterable[Any] | str | Path, oracle: PreferenceOracle | None = None,
                    *, pairing: Literal["all", "best_worst"] = "all",
                    continuation: Literal["full", "first_turn"] = "full",
                    skip_infra_errors: bool = True) -> list[dict[str, Any]]:
    """DPO rows from groups of rollouts (collection lines, lists of records, or a file path).

    ``pairing="all"`` emits every strictly preferred pair of a group (up to ``k (k-1) / 2``);
    ``"best_worst"`` only the top-ranked against the bottom-ranked rollout. Ties are skipped.
    Rollouts whose environment failed (``infra_error``) are left out by default: their outcome
    is unknown, so they are neither chosen nor rejected. ``margin`` is the difference of the
    two rollouts' group rewards (how clearly the group separates them).
    """
    if pairing not in ("all", "best_worst"):
        raise ValueError(f"pairing must be 'all' or 'best_worst', not {pairing!r}")
    if continuation not in ("full", "first_turn"):
        raise ValueError(f"continuation must be 'full' or 'first_turn', not {continuation!r}")
    if isinstance(groups, (str, Path)):
        from mosaic_gym.rollout.collect import read_groups

        groups = read_groups(groups)
    oracle = oracle or PreferenceOracle()
    rows: list[dict[str, Any]] = []
    for group in groups:
        records = _rollouts(group)
        if skip_infra_errors:
            records = [r for r in records
                       if r.outcome is not None and r.outcome.infra_error is None]
        if len(records) < 2:
            continue
        rewards = oracle.group_rewards(records)
        if pairing == "all":
            candidates = [(i, j) for i in range(len(records)) for j in range(len(records))
                          if i != j]
        else:
            order = sorted(range(len(records)), key=lambda i: -rewards[i])
            candidates = [(order[0], order[-1])]
        key = group.get("key") if isinstance(group, Mapping) else None
        for i, j in candidates:
            if oracle.compare(records[i], records[j]) != 1.0:
                continue
            row = make_row(records[i], records[j], continuation=continuation)
            if row is not None:
                row.update(group_key=key, margin=rewards[i] - rewards[j])
                if row["seed"] is None and isinstance(group, Mapping):
                    row["seed"] = group.get("seed")  # records written before reset seeds
                rows.append(row)
    return rows


def make_row(chosen: Trajectory | Mapping[str, Any], rejected: Trajectory | Mapping[str, Any],
             *, continuation: Literal["full", "first_turn"] = "full") -> dict[str, Any] | None:
    """One conversational preference row (``None`` when the two chats are the same).

    ``seed`` is the reset seed of the episode (the one to replay it with)."""
    chosen, rejected = Trajectory.load(chosen), Trajectory.load(rejected)
    a = [_plain(m) for m in chosen.messages]
    b = [_plain(m) for m in rejected.messages]
    if a == b:
        return None
    n = shared_prefix(a, b)
    chosen_part, rejected_part = a[n:], b[n:]
    if continuation == "first_turn":
        chosen_part, rejected_part = chosen_part[:1], rejected_part[:1]
    if not chosen_part or not rejected_part:
        return None  # one chat is a prefix of the other: nothing to prefer
    return {
        "prompt": a[:n], "chosen": chosen_part, "rejected": rejected_part,
        "tools": json.dumps(chosen.tools, ensure_ascii=False),
        "scenario_id": chosen.scenario_id, "attack": chosen.attack,
        "seed": chosen.reset_seed, "category": chosen.category,
    }
