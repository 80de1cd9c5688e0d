"""Policy recipes: shipped files validate, bad recipes fail clearly, backends act."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mosaic_gym.agent.models.chat import (
    ChatTemplateError,
    chat_messages,
    clean_completion,
    load_template,
)
from mosaic_gym.agent.recipes import PolicyRecipe, RecipeError, load_policy, read_recipe

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
LIBRARY = ROOT / "scenarios"


def _write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_validate(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    recipe = read_recipe(path)
    assert recipe.name == path.stem
    if recipe.template:
        assert load_template(recipe.template)  # the referenced file exists and reads


def test_required_recipes_are_shipped() -> None:
    names = {p.stem for p in POLICIES.glob("*.yaml")}
    assert {"tiny-transformers", "tiny-vllm", "tiny-vllm-server", "qwen2.5-7b-instruct",
            "qwen3-4b-thinking", "phi-4"} <= names
    server = read_recipe(POLICIES / "tiny-vllm-server.yaml")
    assert server.backend == "openai" and server.base_url == "http://localhost:8000/v1"


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\nmodel: m\n", "backend: Field required"),
    ("name: x\nmodel: m\nbackend: torch\n", "backend: Input should be"),
    ("name: x\nmodel: m\nbackend: transformers\ncolour: red\n", "colour: Extra inputs"),
    ("name: x\nmodel: m\nbackend: transformers\nsampling: {temperature: -1}\n",
     "sampling.temperature"),
    ("name: x\nmodel: m\nbackend: transformers\nsampling: {top_q: 0.5}\n", "sampling.top_q"),
    ("name: x\nmodel: m\nbackend: openai\n", "needs base_url"),
    ("name: x\nmodel: m\nbackend: openai\nbase_url: localhost:8000\n", "http://"),
    ("name: x\nmodel: m\nbackend: transformers\nbase_url: http://h/v1\n",
     "only apply to backend 'openai'"),
    ("name: x\nmodel: m\nbackend: openai\nbase_url: http://h/v1\ntemplate: mosaic-chatml\n",
     "server applies the chat template"),
    ("name: x\nmodel: m\nbackend: transformers\noptions: {gpu_memory_utilization: 0.5}\n",
     "not known to backend 'transformers'"),
    ("name: x\nmodel: m\nbackend: transformers\ntemplate: nowhere.jinja\n",
     "template file 'nowhere.jinja' not found"),
    ("- just\n- a list\n", "a recipe is a mapping"),
    ("name: [unclosed\n", "invalid YAML"),
])
def test_bad_recipes_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(RecipeError) as info:
        read_recipe(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_recipe_and_missing_model(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RecipeError, match="policy recipe not found"):
        read_recipe(tmp_path / "absent.yaml")
    monkeypatch.chdir(tmp_path)
    recipe = {"name": "t", "model": "runs/tiny/nothing-here", "backend": "transformers"}
    with pytest.raises(RecipeError, match="not found relative to .*mosaic tiny"):
        load_policy(recipe)


def test_eval_reports_recipe_errors(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mosaic_gym.cli import app

    path = _write(tmp_path, "name: x\nmodel: m\nbackend: nope\n")
    result = CliRunner().invoke(app, ["eval", "--policy", str(path), "--limit", "1",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "backend" in result.output


def test_vllm_backend_without_vllm_says_what_to_do(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vLLM is installed here")
    from mosaic_gym.agent.models.vllm_policy import VLLMNotInstalledError

    (tmp_path / "model").mkdir()
    recipe = {"name": "v", "model": str(tmp_path / "model"), "backend": "vllm"}
    with pytest.raises(VLLMNotInstalledError, match="backend: openai"):
        load_policy(recipe)


def test_openai_recipe_builds_server_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = PolicyRecipe(name="srv", model="tiny", backend="openai",
                          base_url="http://127.0.0.1:9/v1", api_key_env="MOSAIC_TEST_KEY",
                          chat_template_kwargs={"enable_thinking": False},
                          sampling={"temperature": 0.2, "max_new_tokens": 32, "seed": 5},
                          options={"timeout": 3})
    monkeypatch.delenv("MOSAIC_TEST_KEY", raising=False)
    with pytest.raises(RecipeError, match="MOSAIC_TEST_KEY"):
        load_policy(recipe)
    monkeypatch.setenv("MOSAIC_TEST_KEY", "k")
    policy = load_policy(recipe)
    assert policy.name == "srv" and policy.model == "tiny" and policy.api_key == "k"
    assert policy.params["max_tokens"] == 32 and policy.seed == 5
    assert policy.params["chat_template_kwargs"] == {"enable_thinking": False}


def test_chat_messages_keep_raw_text_and_drop_structured_calls() -> None:
    raw = '<think>p</think>\n<tool_call>{"name": "a", "arguments": {}}</tool_call>'
    messages = chat_messages([
        {"role": "user", "content": None},
        {"role": "assistant", "content": raw, "tool_calls": [{"id": "c", "function": {}}]},
        {"role": "tool", "content": "out", "name": "a", "tool_call_id": "c"},
        {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "text",
                                                                     "text": "y"}]},
    ])
    assert messages == [{"role": "user", "content": ""},
                        {"role": "assistant", "content": raw},
                        {"role": "tool", "content": "out", "name": "a", "tool_call_id": "c"},
                        {"role": "user", "content": "xy"}]
    with pytest.raises(ChatTemplateError, match="unknown chat role"):
        chat_messages([{"role": "robot", "content": "x"}])
    assert clean_completion("abc<|im_end|>junk<stop>", ["<stop>", "<|im_end|>"]) == "abc"
    with pytest.raises(ChatTemplateError, match="not found"):
        load_template("missing.jinja")


# -- transformers backend on a tiny model --------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mosaic_gym.train.tiny import build_tiny

    subset = [LIBRARY / "benign" / "email_reply_with_report.yaml",
              LIBRARY / "injection" / "email_summary_exfil.yaml"]
    return build_tiny(tmp_path_factory.mktemp("tiny") / "m", scenario_paths=subset,
                      split="all", vocab_size=600, hidden_size=64, num_layers=2, num_heads=2,
                      num_kv_heads=1, intermediate_size=128, max_positions=2048)


def _chats(n: int) -> list[tuple[list[dict], list[dict]]]:
    import gymnasium as gym

    import mosaic_gym  # noqa: F401

    env = gym.make("mosaic/All-v0", split="train", attack="none")
    chats = []
    for seed in range(n):
        _obs, info = env.reset(seed=seed)
        chats.append((info["messages"], info["tools"]))
    env.close()
    return chats


@pytest.mark.train
def test_transformers_policy_batches_and_replays(tiny_model: Path) -> None:
    recipe = {"name": "tiny", "model": str(tiny_model), "backend": "transformers",
              "sampling": {"temperature": 1.0, "max_new_tokens": 12, "seed": 7},
              "options": {"batch_size": 2}}
    chats = _chats(3)
    first = load_policy(recipe)
    assert first.name == "tiny"
    batch = first.act_batch(chats)
    assert len(batch) == 3 and all(isinstance(text, str) for text in batch)
    again = load_policy(recipe).act_batch(chats)
    assert again == batch  # seeded: the same call sequence replays
    # act() is seeded per (episode seed, step), so it does not depend on earlier calls.
    one, two = load_policy(recipe), load_policy(recipe)
    one.reset(None, seed=11)
    two.reset(None, seed=11)
    one.act(*chats[0])
    one.reset(None, seed=11)
    assert one.act(*chats[1]) == two.act(*chats[1])
    # Left padding: a prompt alone and inside a batch of longer ones gives the same greedy turn.
    greedy = {**recipe, "sampling": {"temperature": 0, "max_new_tokens": 8}}
    policy = load_policy(greedy)
    alone = policy.act_batch([chats[2]])
    assert policy.act_batch(chats)[2] == alone[0]


@pytest.mark.train
def test_transformers_policy_overlong_prompt_is_an_empty_turn(tiny_model: Path) -> None:
    from mosaic_gym.agent.models.transformers_policy import TransformersPolicy
    from mosaic_gym.protocol.format import parse_action

    policy = TransformersPolicy(str(tiny_model), sampling={"max_new_tokens": 4})
    huge = [{"role": "user", "content": "word " * 5000}]
    assert policy.act(huge, []) == ""
    assert policy.truncated_prompts == 1
    assert parse_action("").kind == "invalid"  # the env counts it as a format error


@pytest.mark.train
def test_eval_runs_a_transformers_recipe(tiny_model: Path, tmp_path: Path) -> None:
    from mosaic_gym.evaluate import evaluate_policy

    recipe = _write(tmp_path, f"name: tiny\nmodel: {tiny_model}\nbackend: transformers\n"
                              "sampling: {max_new_tokens: 8, seed: 0}\n")
    document = evaluate_policy(policy=str(recipe), env_id="mosaic/All-v0", limit=2,
                               out=tmp_path / "eval", quiet=True)
    assert document["episodes"] == 2
    lines = (tmp_path / "eval" / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == 2
    record = json.loads(lines[0])
    assert record["outcome"]["termination"] in {"max_steps", "final_answer", "refusal"}


def test_phi4_tools_template_renders_the_chat() -> None:
    pytest.importorskip("jinja2")
    from mosaic_gym.train.tiny import render_chat_text

    template = load_template(POLICIES / "templates" / "phi-4-tools.jinja")
    tools = [{"type": "function", "function": {"name": "read_file", "parameters": {}}}]
    messages = [{"role": "system", "content": "SYS"}, {"role": "user", "content": "go"},
                {"role": "assistant", "content": "<think>p</think>", "tool_calls": [{}]},
                {"role": "tool", "content": "out"}]
    text = render_chat_text(messages, tools, add_generation_prompt=True, template=template)
    assert text.startswith("<|im_start|>system<|im_sep|>SYS\n\n# Tools\n<tools>\n"
                           '{"type": "function"')
    assert "<|im_start|>assistant<|im_sep|><think>p</think><|im_end|>" in text
    assert "<tool_response>\nout\n</tool_response>" in text
    assert text.endswith("<|im_start|>assistant<|im_sep|>")
