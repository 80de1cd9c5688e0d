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


FUNCTIONS = [(module, name) for module, names in compat.PRIVATE_FUNCTIONS.items()
             for name in names]


@pytest.mark.parametrize("module, name", FUNCTIONS, ids=[f"{m}.{n}" for m, n in FUNCTIONS])
def test_private_function_exists(module, name):
    assert callable(getattr(importlib.import_module(module), name, None)), (
        f"{module} has no {name}: update mosaic_gym/train/compat/trl.py")


def test_use_triton_is_the_switch_of_the_fused_heads_compact_path():
    """The door changes one decision: the fused forward asks ``_use_triton`` of the hidden
    states' device whether to score the labelled positions only."""
    from trl.trainer import utils

    source = inspect.getsource(utils.add_fused_lm_head)
    assert "compact = _use_triton(hidden_states.device)" in source
    assert "hidden_states[mask] if compact" in source


def _fused_model(seed: int = 0):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=97, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64, tie_word_embeddings=True)
    model = Qwen2ForCausalLM(config)
    add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))
    return model


def _fused_pass(model, compact: bool):
    """Log-probabilities, entropies, loss and every gradient of one fused forward/backward,
    and the number of rows the LM head kernel was given."""
    import torch
    from trl.trainer import utils

    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 97, (3, 20), generator=generator)
    attention = torch.ones_like(ids)
    attention[0, :6] = 0  # left padding
    attention[2, :3] = 0
    labels = ids.masked_fill(attention == 0, -100)
    labels[:, :9] = -100  # the prompt
    labels[1, 15:17] = -100  # a tool output inside the completion
    rows = []
    kernel = utils._ChunkedLogProbFunction

    class Spy:
        @staticmethod
        def apply(hidden, *args):
            rows.append(hidden.shape[0])
            return kernel.apply(hidden, *args)

    model.zero_grad()
    utils._ChunkedLogProbFunction = Spy
    try:
        with compat.compact_fused_head(compact):
            out = model(input_ids=ids, attention_mask=attention, labels=labels,
                        fused_lm_head=True)
    finally:
        utils._ChunkedLogProbFunction = kernel
    (out.log_probs.sum() + 0.1 * out.entropy.sum()).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return out, grads, rows, int((labels[:, 1:] != -100).sum())


def test_compact_fused_head_gives_trls_log_probs_and_gradients_on_fewer_rows():
    import torch

    model = _fused_model()
    full, full_grads, full_rows, kept = _fused_pass(model, compact=False)
    compact, compact_grads, compact_rows, _ = _fused_pass(model, compact=True)
    assert full_rows == [3 * 19] and compact_rows == [kept] and kept < 3 * 19
    for field in ("log_probs", "entropy", "label_mask"):
        torch.testing.assert_close(getattr(compact, field), getattr(full, field),
                                   rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(compact.loss, full.loss, rtol=1e-5, atol=1e-6)
    assert (compact.log_probs[~compact.label_mask] == 0).all()
    for name, grad in full_grads.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(compact_grads[name], grad, rtol=1e-4, atol=1e-6)


def test_compact_fused_head_restores_the_switch_also_after_an_error():
    import torch
    from trl.trainer import utils

    original = utils._use_triton
    cpu = torch.device("cpu")
    assert original(cpu) is False
    with pytest.raises(RuntimeError, match="inside"), compat.compact_fused_head() as active:
        assert active and utils._use_triton(cpu) is True
        raise RuntimeError("inside")
    assert utils._use_triton is original
    with compat.compact_fused_head(False) as active:
        assert active is False and utils._use_triton is original


def test_compact_fused_head_names_a_trl_without_the_switch(monkeypatch):
    from trl.trainer import utils

    monkeypatch.delattr(utils, "_use_triton")
    with pytest.raises(DependencyVersionError, match="_use_triton"), \
            compat.compact_fused_head():
        pass
