"""BFCL's multi-turn categories: simulated Python APIs, BFCL's state and response checks.

A multi-turn item is a conversation of several user turns over stateful simulated APIs
(a file system, a trading bot, a vehicle...) shipped in ``bfcl_eval``. The agent makes calls
(one per MOSAIC turn); a final answer ends a *user* turn and the next user message is the
observation; the last answer ends the episode. Then BFCL's own sub-checkers judge, turn by
turn, exactly as its ``multi_turn_checker`` orders them: a turn whose ground truth has calls
needs model calls, ``state_checker`` compares the public attributes of the model's API
instances at the end of that turn with the ground truth's, ``response_checker`` wants every
ground-truth result among the model's results so far, and a turn with no ground truth
(``miss_param``: the request lacks a parameter) must get no call.

Nothing is ``eval``'d. BFCL's harness evaluates call strings; here agent calls are JSON
already and dispatch to a public method of one of the item's API instances (never a private
one, never anything else), and BFCL's ground-truth strings are parsed with :mod:`ast` into a
method name and literal arguments (:func:`parse_call`; anything but a plain call with
literal arguments is refused). Results are stringified as BFCL does (str as is, dict as JSON,
else ``str``), and an exception becomes ``"Error during execution: ..."``.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import json
from collections.abc import Mapping, Sequence
from typing import Any

from mosaic_gym.core.events import Event
from mosaic_gym.errors import SuiteError

MULTI_TURN = ("multi_turn_base", "multi_turn_miss_param", "multi_turn_long_context",
              "multi_turn_miss_func")


def parse_call(text: str) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """``"mv(source='a', destination='b')"`` -> ``("mv", (), {...})``; ValueError otherwise."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ValueError(f"not a call: {text!r}") from exc
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"not a plain function call: {text!r}")
    try:
        args = tuple(ast.literal_eval(a) for a in node.args)
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as exc:
        raise ValueError(f"arguments are not literals: {text!r}") from exc
    if any(k.arg is None for k in node.keywords):
        raise ValueError(f"**kwargs are not allowed: {text!r}")
    return node.func.id, args, kwargs


def function_docs(item: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, list]]:
    """The item's function docs (BFCL's per-class doc files) and the held-out ones per turn."""
    from importlib.resources import files

    from bfcl_eval.constants.executable_backend_config import MULTI_TURN_FUNC_DOC_FILE_MAPPING

    folder = files("bfcl_eval") / "data" / "multi_turn_func_doc"
    docs: list[dict[str, Any]] = []
    for name in item["involved_classes"]:
        text = (folder / MULTI_TURN_FUNC_DOC_FILE_MAPPING[name]).read_text(encoding="utf-8")
        docs += [json.loads(line) for line in text.splitlines() if line.strip()]
    held: dict[str, list] = {}
    for turn, names in (item.get("missed_function") or {}).items():
        held[str(turn)] = [d for d in docs if d["name"] in names]
        docs = [d for d in docs if d["name"] not in names]
    return docs, held


class APISession:
    """The item's API instances, loaded from its ``initial_config``, and call dispatch."""

    def __init__(self, item: Mapping[str, Any], long_context: bool) -> None:
        from bfcl_eval.constants.executable_backend_config import (
            CLASS_FILE_PATH_MAPPING,
            STATELESS_CLASSES,
        )

        self.instances: dict[str, Any] = {}
        self.methods: dict[str, Any] = {}
        for name in item["involved_classes"]:
            if name not in CLASS_FILE_PATH_MAPPING:
                raise SuiteError(f"BFCL item {item['id']}: unknown API class {name!r}")
            instance = getattr(importlib.import_module(CLASS_FILE_PATH_MAPPING[name]), name)()
            if name not in STATELESS_CLASSES:
                instance._load_scenario(copy.deepcopy(item["initial_config"].get(name, {})),
                                        long_context=long_context)
            self.instances[name] = instance
            for method_name, method in inspect.getmembers(instance, inspect.ismethod):
                if not method_name.startswith("_"):
                    self.methods[method_name] = method

    def call(self, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        method = self.methods.get(name)
        if method is None:
            return f"Error during execution: function {name!r} is not available"
        try:
            result = method(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - BFCL reports every failure as a result
            return f"Error during execution: {exc}"
        if isinstance(result, str):
            return result
        if isinstance(result, dict):
            try:
                return json.dumps(result)
            except (TypeError, ValueError):
                return str(result)
        return str(result)

    def public_state(self) -> dict[str, dict[str, Any]]:
        return {name: {k: v for k, v in vars(i).items() if not k.startswith("_")}
                for name, i in self.instances.items()}

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.instances)


def state_events(before: Mapping[str, Mapping[str, Any]],
                 after: Mapping[str, Mapping[str, Any]]) -> tuple[Event, ...]:
    """One ``write`` event per public attribute of an API instance that changed."""
    return tuple(Event("api_state_changed", f"{cls}.{attr}", "write")
                 for cls in after for attr in after[cls]
                 if before.get(cls, {}).get(attr) != after[cls][attr])


def check(item: Mapping[str, Any], model_turns: Sequence[Sequence[str]],
          model_snapshots: Sequence[Mapping[str, Any]], long_context: bool) -> dict[str, Any]:
    """BFCL's verdict for one item: ``{"valid": bool, ...}`` from its own sub-checkers."""
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import (
        response_checker,
        state_checker,
    )

    ground_truth: list[list[str]] = item["possible_answer"]
    truth = APISession(item, long_context)
    all_model_results: list[str] = []
    for turn, calls in enumerate(ground_truth):
        model_results = list(model_turns[turn]) if turn < len(model_turns) else []
        all_model_results += model_results
        truth_results = [truth.call(*parse_call(c)) for c in calls]
        if not calls:
            if model_results:
                return {"valid": False, "error_type": "multi_turn:irrelevance_error",
                        "turn": turn}
            continue
        snapshot = model_snapshots[turn] if turn < len(model_snapshots) else None
        if not model_results or snapshot is None:
            return {"valid": False, "error_type": "multi_turn:empty_turn_model_response",
                    "turn": turn}
        result = state_checker(snapshot, truth.instances)
        if not result["valid"]:
            return {**result, "turn": turn}
        result = response_checker(all_model_results, truth_results, turn)
        if not result["valid"]:
            return {**result, "turn": turn}
    return {"valid": True}
