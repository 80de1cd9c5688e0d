"""Each private TRL name that ``mosaic_gym.train.compat.trl`` relies on, against the installed TRL.

One test per name: it exists, is callable where it is called, and takes the arguments the
door passes. An upgrade of TRL that renames or reshapes one fails here, by name.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

pytest.importorskip("trl")

from mosaic_gym.errors import DependencyVersionError  # noqa: E402
from mosaic_gym.train.compat import trl as compat  # noqa: E402

PAIRS = [(owner, name) for owner, names in compat.PRIVATE_NAMES.items() for name in names]

#: The parameters each door passes (positionally, after self), per private method.
CALLED_WITH = {
    "_generate_single_turn": ["prompt_ids", "images", "multimodal_fields", "num_generations"],
    "_prepare_dataset": ["dataset", "processing_class", "args", "dataset_name"],
    "_set_signature_columns_if_needed": [],
}


def _owner(dotted: str) -> type:
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize("owner, name", PAIRS, ids=[f"{o}.{n}" for o, n in PAIRS])
def test_private_name_exists_with_the_signature_used(owner, name):
    method = getattr(_owner(owner), name, None)
    assert callable(method), f"{owner} has no {name}: update mosaic_gym/train/compat/trl.py"
    parameters = [p for p in inspect.signature(method).parameters if p != "self"]
    required = CALLED_WITH[name]
    assert parameters[: len(required)] == required, (owner, name, parameters)


def test_every_private_method_the_module_calls_is_listed():
    source = inspect.getsource(compat)
    listed = {name for names in compat.PRIVATE_NAMES.values() for name in names}
    for name in CALLED_WITH:
        assert name in source and name in listed


def test_signature_columns_attribute_is_the_trainers_own():
    """``_set_signature_columns_if_needed`` fills ``_signature_columns`` (transformers'
    Trainer), which the DPO door extends with the loss-mask columns."""
    from transformers import Trainer

    source = inspect.getsource(Trainer)
    assert "self._signature_columns = " in source
    assert "def _set_signature_columns_if_needed" in source


def test_colocated_vllm_path_is_read_where_trl_keeps_it():
    """``trainer.vllm_generation.llm``: the GRPO trainer keeps a ``VLLMGeneration`` helper
    whose ``llm`` is the colocated engine. Building one needs vLLM on a GPU, so the two
    assignments are checked in TRL's source."""
    from trl import GRPOTrainer
    from trl.generation import vllm_generation

    assert "self.vllm_generation = " in inspect.getsource(GRPOTrainer)
    assert "self.llm = " in inspect.getsource(vllm_generation)


def test_untested_version_is_refused_with_a_clear_message(monkeypatch):
    import trl

    monkeypatch.setattr(trl, "__version__", "99.1.0")
    with pytest.raises(DependencyVersionError, match="TRL 99.1.0.*compat/trl.py"):
        compat.check_version()
    monkeypatch.setattr(trl, "__version__", "1.16.3")
    compat.check_version()
