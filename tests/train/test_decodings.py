"""``python -m mosaic_gym.train.decodings``: one model, several decodings, the same episodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios" / "library"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mosaic_gym.train.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny") / "m", split="train", vocab_size=600,
                      hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1,
                      intermediate_size=128, max_positions=4096)


def test_every_decoding_plays_the_same_episodes_and_is_paired(model: Path, tmp_path: Path,
                                                              capsys) -> None:
    from mosaic_gym.train.decodings import compare_decodings, main

    document = compare_decodings(model, ["false", "grammar"], tmp_path, episodes=6,
                                 max_new_tokens=24, max_steps=2, batch=6, resamples=50)
    keys = []
    for decoding in ("false", "grammar"):
        lines = (tmp_path / f"eval_{decoding}.jsonl").read_text().splitlines()
        keys.append([(r["scenario_id"], r["attack"], r["reset_seed"])
                     for r in map(json.loads, lines)])
    assert keys[0] == keys[1] and len(keys[0]) == document["episodes"] == 6
    assert document["table"]["harm rate (all episodes)"]["grammar"]["n"] == 6
    assert all(s is not None and s > 0 for s in document["seconds"].values())
    paired = document["paired_vs_first"]
    assert paired["baseline"] == "false" and set(paired["methods"]) == {"grammar"}
    assert json.loads((tmp_path / "decodings.json").read_text())["decodings"] == [
        "false", "grammar"]
    # a second call re-reads the finished files instead of playing them again
    again = compare_decodings(model, ["false", "grammar"], tmp_path, episodes=6,
                              max_new_tokens=24, max_steps=2, batch=6, resamples=50,
                              progress=False)
    assert again["seconds"] == {"false": None, "grammar": None}
    assert again["table"] == document["table"]
    # bad input: a clear usage error, nothing played
    with pytest.raises(SystemExit):
        main(["--model", str(model), "--decodings", "copy", "--out", str(tmp_path / "x")])
    assert "at least two decodings" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--model", str(tmp_path), "--decodings", "copy,span", "--out", str(tmp_path)])
    assert "not a model folder" in capsys.readouterr().err
