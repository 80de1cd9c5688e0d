"""``mosaic/BFCL-v0``: the Berkeley Function Calling Leaderboard's items, judged by its checker.

BFCL (``bfcl-eval`` 2026.3.23, installed ``--no-deps``: see the ``bfcl`` extra) ships its
question files and possible answers in the wheel. This env plays its single-turn categories
in MOSAIC text and hands BFCL's own AST checker the calls the agent made:

* **Calls are never evaluated.** BFCL's harness decodes a model's call *strings* with
  ``eval()``; here an agent's calls arrive as MOSAIC tool-call JSON, already a structure, and
  are given to the checker in its decoded form (``[{name: {param: value}}]``). Nothing the
  agent writes is ever run as code.
* **One call per turn.** A parallel item's several calls are made over several turns; each is
  acknowledged (single-turn items execute nothing) and the final answer closes the item.
  The checker then sees all calls of the episode, as BFCL sees the calls of one response.
* **Categories and verdicts** (mosaic terms): relevant items (``simple_python``,
  ``multiple``, ``parallel``, ``parallel_multiple`` and their ``live_`` forms) are
  ``benign`` tasks, expected ``complete``; completed = the checker accepts the calls and the
  agent did not refuse, so a refusal there is over-refusal. ``irrelevance`` and
  ``live_irrelevance`` items offer only functions that cannot serve the request: BFCL scores
  abstaining, so these are category ``irrelevance``, expected ``refuse``, and ``refused``
  means *made no call* (by ``refusal_tool`` or a plain answer): a correct refusal on a
  benign request. ``live_relevance`` items are correct with at least one call.
* **The checker import.** ``ast_checker`` imports BFCL's model registry (every vendor SDK)
  only to ask, for dotted function names, whether a model's API renamed ``.`` to ``_``.
  Agents here see the names as BFCL wrote them, so the answer is always no: the checker is
  loaded under a private module name with a model-free stand-in for that registry, and
  BFCL's own modules are left as they are.

The multi-turn categories run on BFCL's simulated APIs: see :mod:`.bfcl_multi_turn`.
Memory and web-search categories need the network and are not offered.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import json
import sys
import threading
import types
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from mosaic_gym.envs.rewards import RewardFn
from mosaic_gym.envs.suites.base import (
    DEFAULT_MAX_STEPS,
    SuiteEnv,
    SuiteEpisode,
    ToolResult,
    check_common_kwargs,
)
from mosaic_gym.envs.suites.bfcl_multi_turn import (
    MULTI_TURN,
    APISession,
    function_docs,
    parse_call,
    state_events,
)
from mosaic_gym.envs.suites.scenario import SuiteScenario, SuiteSpec, TurnsSolution
from mosaic_gym.errors import SuiteError
from mosaic_gym.judge.outcome import Outcome
from mosaic_gym.scenario.schema import SolutionSpec, ToolCallSpec

INSTALL_HINT = ("pip install 'mosaic-gym[bfcl]' && pip install --no-deps "
                "bfcl-eval==2026.3.23")
DATA_PREFIX = "BFCL_v4_"
RELEVANT = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple",
            "live_multiple", "live_parallel", "live_parallel_multiple")
IRRELEVANT = ("irrelevance", "live_irrelevance")
RELEVANCE = ("live_relevance",)
CATEGORIES = RELEVANT + IRRELEVANT + RELEVANCE + MULTI_TURN
_LOCK = threading.Lock()

# BFCL's parameter types, as JSON Schema for the agent.
_TYPES = {"dict": "object", "float": "number", "tuple": "array", "integer": "integer",
          "string": "string", "boolean": "boolean", "array": "array", "object": "object",
          "number": "number"}


def _data_dir() -> Any:
    try:
        from importlib.resources import files

        return files("bfcl_eval") / "data"
    except ModuleNotFoundError as exc:
        raise SuiteError(f"mosaic/BFCL-v0 needs BFCL's data and checker: {INSTALL_HINT}") from exc


@cache
def load_category(category: str) -> tuple[dict[str, Any], ...]:
    """The items of one category, each with its ``possible_answer`` (when BFCL has one)."""
    if category not in CATEGORIES:
        raise SuiteError(f"unknown or unsupported BFCL category {category!r}; supported: "
                         f"{', '.join(CATEGORIES)}")
    data = _data_dir()
    items = [json.loads(line) for line in
             (data / f"{DATA_PREFIX}{category}.json").read_text(encoding="utf-8").splitlines()
             if line.strip()]
    answers_file = data / "possible_answer" / f"{DATA_PREFIX}{category}.json"
    if answers_file.is_file():
        answers = {row["id"]: row["ground_truth"] for row in
                   map(json.loads, answers_file.read_text(encoding="utf-8").splitlines())}
        for item in items:
            item["possible_answer"] = answers.get(item["id"])
    return tuple(items)


@cache
def category_pool(category: str) -> tuple[SuiteScenario, ...]:
    """The (frozen) scenarios of one category, built once per process: a batched evaluation
    opens one env per slot, and building all 4,291 took about 2 s each time."""
    return tuple(scenario_for(item) for item in load_category(category))


def category_of(item_id: str) -> str:
    """``live_simple_3-2-1`` -> ``live_simple`` (BFCL ids are ``<category>_<n>[-...]``)."""
    head = item_id.split("-", 1)[0]
    return head.rsplit("_", 1)[0]


def find_item(item_id: str) -> dict[str, Any]:
    for item in load_category(category_of(item_id)):
        if item["id"] == item_id:
            return item
    raise SuiteError(f"BFCL has no item {item_id!r}")


@lru_cache(maxsize=1)
def ast_checker_module() -> types.ModuleType:
    """BFCL's ``ast_checker`` loaded privately with a model-free model registry (see above)."""
    try:
        spec = importlib.util.find_spec("bfcl_eval.eval_checker.ast_eval.ast_checker")
    except ModuleNotFoundError:
        spec = None
    if spec is None or spec.origin is None:
        raise SuiteError(f"mosaic/BFCL-v0 needs BFCL's checker: {INSTALL_HINT}")
    registry_name = "bfcl_eval.constants.model_config"
    stand_in = types.ModuleType(registry_name)
    stand_in.MODEL_CONFIG_MAPPING = _NoRenaming()  # type: ignore[attr-defined]
    with _LOCK:
        previous = sys.modules.get(registry_name)
        sys.modules[registry_name] = stand_in
        try:
            private = importlib.util.spec_from_file_location(
                "mosaic_gym._bfcl_ast_checker", spec.origin)
            assert private is not None and private.loader is not None
            module = importlib.util.module_from_spec(private)
            private.loader.exec_module(module)
        finally:
            if previous is None:
                del sys.modules[registry_name]
            else:
                sys.modules[registry_name] = previous
    return module


@dataclass(frozen=True)
class _ModelConfig:
    underscore_to_dot: bool = False


class _NoRenaming(dict[str, _ModelConfig]):
    def __missing__(self, key: str) -> _ModelConfig:
        return _ModelConfig()


def to_json_schema(node: Any) -> Any:
    """BFCL's parameter schema (``dict``, ``float``, ``tuple``, ``any``) as JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if k != "type"}
    kind = node.get("type")
    if isinstance(kind, str) and kind in _TYPES:
        out["type"] = _TYPES[kind]
    return out


def tool_schemas(item: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    functions = item if isinstance(item, list) else item["function"]
    schemas = []
    for f in functions:
        parameters = to_json_schema(f.get("parameters") or {"type": "dict"})
        parameters.setdefault("type", "object")
        parameters.setdefault("properties", {})  # agents (and the random baseline) read it
        schemas.append({"type": "function", "function": {
            "name": f["name"], "description": f.get("description", ""),
            "parameters": parameters}})
    return schemas


_OMIT = object()


def _pick(option: Any) -> Any:
    if isinstance(option, dict):
        picked = {k: _first(v) for k, v in option.items()}
        return {k: v for k, v in picked.items() if v is not _OMIT}
    if isinstance(option, list):
        return [_pick(x) for x in option]
    return option


def _first(options: Any) -> Any:
    """The first acceptable value of a possible-answer list ("" means "may be omitted")."""
    if not isinstance(options, list):
        return _pick(options)
    for option in options:
        if option != "":
            return _pick(option)
    return _OMIT


def reference_calls(item: dict[str, Any]) -> list[ToolCallSpec]:
    """One call per possible answer, each parameter at its first acceptable value."""
    calls = []
    for answer in item.get("possible_answer") or []:
        for name, params in answer.items():
            args = {k: v for k, v in ((k, _first(opts)) for k, opts in params.items())
                    if v is not _OMIT}
            calls.append(ToolCallSpec(tool=name, args=args))
    return calls


def _placeholder_calls(item: dict[str, Any]) -> list[ToolCallSpec]:
    """A call of the first function with type-correct placeholder values (the "act anyway"
    agent's answer to an item that should be declined); none when there is no function."""
    if not item["function"]:
        return []
    function = item["function"][0]
    params = function.get("parameters", {})
    values = {"integer": 1, "float": 1.0, "number": 1.0, "boolean": True, "array": [],
              "tuple": [], "dict": {}, "object": {}}
    args = {name: values.get(str(params["properties"][name].get("type")), "x")
            for name in params.get("required", []) if name in params.get("properties", {})}
    return [ToolCallSpec(tool=function["name"], args=args)]


def _turn_text(messages: list[dict[str, Any]]) -> str:
    return "\n\n".join(m["content"] for m in messages if m["role"] == "user")


def _keyword_calls(item: dict[str, Any], calls: list[str]) -> list[ToolCallSpec]:
    """BFCL ground-truth call strings as keyword calls (positional arguments bound by the
    simulated API's own signature), for the scripted baselines."""
    session = _signatures(item)
    specs = []
    for text in calls:
        name, args, kwargs = parse_call(text)
        signature = session.get(name)
        if signature is not None and args:
            kwargs = dict(signature.bind_partial(*args, **kwargs).arguments)
        specs.append(ToolCallSpec(tool=name, args=kwargs))
    return specs


def _signatures(item: dict[str, Any]) -> dict[str, inspect.Signature]:
    from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING

    out: dict[str, inspect.Signature] = {}
    for name in item["involved_classes"]:
        cls = getattr(importlib.import_module(CLASS_FILE_PATH_MAPPING[name]), name)
        for method_name, function in inspect.getmembers(cls, inspect.isfunction):
            if not method_name.startswith("_"):
                params = list(inspect.signature(function).parameters.values())[1:]
                out[method_name] = inspect.Signature(params)
    return out


def scenario_for(item: dict[str, Any]) -> SuiteScenario:
    category = category_of(item["id"])
    request = _turn_text(item["question"][0])
    if category in MULTI_TURN:
        turns = [SolutionSpec(calls=_keyword_calls(item, calls), answer="Done.", refuse=False)
                 for calls in item.get("possible_answer") or []]
        spec = SuiteSpec(title=f"BFCL {item['id']}", user_request=request,
                         solution=TurnsSolution(turns=turns))  # type: ignore[arg-type]
        return SuiteScenario(id=f"bfcl/{item['id']}", category="benign",
                             domain=f"bfcl/{category}", spec=spec)
    if category in IRRELEVANT:
        spec = SuiteSpec(title=f"BFCL {item['id']}", user_request=request, expected="refuse",
                         solution=SolutionSpec(calls=[], answer="Done.", refuse=True),
                         unsafe_solution=SolutionSpec(calls=_placeholder_calls(item),
                                                      answer="Done.", refuse=False))
        return SuiteScenario(id=f"bfcl/{item['id']}", category="irrelevance",
                             domain=f"bfcl/{category}", spec=spec, expected="refuse")
    calls = reference_calls(item) if category in RELEVANT else _placeholder_calls(item)
    spec = SuiteSpec(title=f"BFCL {item['id']}", user_request=request,
                     solution=SolutionSpec(calls=calls, answer="Done.", refuse=False))
    return SuiteScenario(id=f"bfcl/{item['id']}", category="benign",
                         domain=f"bfcl/{category}", spec=spec)


class BFCLEpisode(SuiteEpisode):
    def __init__(self, item: dict[str, Any], seed: int, max_steps: int | None,
                 reward_fn: RewardFn) -> None:
        self.item = item
        self.category = category_of(item["id"])
        self.calls: list[dict[str, Any]] = []
        self.names = {f["name"] for f in item["function"]}
        scenario = scenario_for(item)
        steps = max_steps or max(DEFAULT_MAX_STEPS, len(scenario.spec.solution.calls) + 4)
        # BFCL's system turns (some live items have one) stay ahead of the user's request.
        super().__init__(scenario=scenario, attack=None, seed=seed,
                         tool_schemas=tool_schemas(item),
                         user_request=scenario.spec.user_request, max_steps=steps,
                         reward_fn=reward_fn)
        extra = [m["content"] for m in item["question"][0] if m["role"] == "system"]
        if extra:
            self.messages[0]["content"] += "\n\n" + "\n\n".join(extra)

    def run_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        self.calls.append({name: arguments})
        if name not in self.names:
            known = ", ".join(sorted(self.names))
            return ToolResult(f"Error: unknown function {name!r}. Available: {known}, "
                              "refusal_tool", error=f"unknown function {name!r}")
        return ToolResult(f"Call {len(self.calls)} recorded ({name}). Make any further call "
                          "the request needs, then give your final answer.")

    def fill_verdict(self, outcome: Outcome) -> None:
        if self.category in IRRELEVANT:
            outcome.refused = not self.calls
            outcome.completed = not self.calls
            return
        if self.category in RELEVANCE:
            outcome.completed = bool(self.calls) and not outcome.refused
            return
        from bfcl_eval.constants.enums import Language

        result = ast_checker_module().ast_checker(
            self.item["function"], list(self.calls), self.item["possible_answer"],
            Language.PYTHON, self.category, "mosaic")
        self.checker_result = result
        outcome.completed = bool(result.get("valid")) and not outcome.refused


class MultiTurnEpisode(SuiteEpisode):
    """A multi-turn item: calls run on BFCL's simulated APIs, a final answer ends a turn."""

    def __init__(self, item: dict[str, Any], seed: int, max_steps: int | None,
                 reward_fn: RewardFn) -> None:
        self.item = item
        self.category = category_of(item["id"])
        self.long_context = "long_context" in self.category
        docs, self.held = function_docs(item)
        self.session = APISession(item, self.long_context)
        self.turn = 0
        self.turn_results: list[list[str]] = [[]]
        self.snapshots: list[dict[str, Any]] = []
        scenario = scenario_for(item)
        calls = sum(len(turn) for turn in item.get("possible_answer") or [])
        steps = max_steps or max(DEFAULT_MAX_STEPS, calls + 2 * len(item["question"]) + 4)
        super().__init__(scenario=scenario, attack=None, seed=seed,
                         tool_schemas=tool_schemas(docs), user_request=scenario.spec.user_request,
                         max_steps=steps, reward_fn=reward_fn)
        self.state_before = copy.deepcopy(self.session.public_state())

    def run_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        # Like BFCL's executor, any public method of the item's APIs runs (a held-out one
        # too, if the agent guesses its name); nothing else can.
        result = self.session.call(name, (), arguments)
        self.turn_results[-1].append(result)
        after = copy.deepcopy(self.session.public_state())
        events = state_events(self.state_before, after)
        self.state_before = after
        error = result if result.startswith("Error during execution") else None
        return ToolResult(result, events=events, error=error)

    def next_user_turn(self) -> str | None:
        self.snapshots.append(self.session.snapshot())
        self.turn += 1
        if self.turn >= len(self.item["question"]):
            return None
        self.turn_results.append([])
        held = self.held.get(str(self.turn))
        if held:
            from bfcl_eval.constants.default_prompts import (
                DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC as MORE_FUNCTIONS,
            )

            self.tool_schemas[-1:-1] = tool_schemas(held)  # refusal_tool stays last
            return str(MORE_FUNCTIONS)
        return _turn_text(self.item["question"][self.turn])

    def fill_verdict(self, outcome: Outcome) -> None:
        from mosaic_gym.envs.suites.bfcl_multi_turn import check

        result = check(self.item, self.turn_results, self.snapshots, self.long_context)
        self.checker_result = result
        outcome.completed = bool(result["valid"]) and not outcome.refused


class BFCLEnv(SuiteEnv):
    """BFCL items as a Gymnasium env.

    Args:
        category: one BFCL category (see ``CATEGORIES``), or "all" for every supported one.
        item: one item id ("simple_python_0"), restricting the pool to it.
        scenario: an episode id ``bfcl/<item id>`` (what ``mosaic eval``/``collect`` pass).
        limit: keep the first ``limit`` items of each category.
        max_steps, reward, backend, split, render_mode: as for the other mosaic envs.
    """

    def __init__(self, category: str = "simple_python", item: str | None = None,
                 scenario: str | None = None, limit: int | None = None,
                 max_steps: int | None = None, reward: str | RewardFn = "sparse",
                 backend: str | None = None, split: str | None = None,
                 render_mode: str | None = None, attack: str | None = None) -> None:
        check_common_kwargs(backend, render_mode)
        if attack not in (None, "none"):
            raise SuiteError("BFCL has no injections: attack must be None or 'none'")
        super().__init__(max_steps=max_steps, reward=reward, render_mode=render_mode)
        if scenario is not None:
            item = scenario.removeprefix("bfcl/")
        if item is not None:
            self.pool = [scenario_for(find_item(item))]
            return
        names = CATEGORIES if category == "all" else (category,)
        for name in names:
            self.pool += list(category_pool(name)[:limit])

    def _start(self, scenario_id: str, attack: str | None, seed: int) -> SuiteEpisode:
        if attack is not None:
            raise SuiteError("BFCL has no injections: attack must be None or 'none'")
        item = find_item(scenario_id.removeprefix("bfcl/"))
        kind = MultiTurnEpisode if category_of(item["id"]) in MULTI_TURN else BFCLEpisode
        return kind(item, seed, self.max_steps_override, self.reward_fn)
