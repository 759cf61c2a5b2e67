"""CALRec's sampling of G candidate next-item lines per user (CALRec inference;
shared/papers/calrec.md sec. 6): one prefill per prompt, its KV cache copied G times, then G
samples decoded in parallel until a newline, an end token or `max_new_tokens`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from pydantic import BaseModel, Field, NonNegativeFloat, NonNegativeInt, PositiveInt

from llmrec.config_rules import CONFIG_RULES

if TYPE_CHECKING:
    from transformers import Cache, PreTrainedModel, PreTrainedTokenizerBase

Prompt = str | Sequence[int]  # text, or token ids already encoded


class GenerationConfig(BaseModel):
    """How many next-item lines to sample per user, and how."""

    model_config = CONFIG_RULES

    num_samples: PositiveInt = Field(8, description="G: sampled lines per user")
    temperature: NonNegativeFloat = Field(
        0.7, description="sampling temperature; 0 decodes greedily (the G lines are then equal)"
    )
    top_p: float = Field(
        1.0, gt=0.0, le=1.0, description="nucleus sampling: smallest token set of this mass"
    )
    max_new_tokens: PositiveInt = Field(32, description="tokens generated per line at most")
    batch_prompts: PositiveInt = Field(
        16, description="prompts decoded together (left-padded); 1 decodes them one by one"
    )
    seed: int = Field(0, description="sampling seed; each prompt's stream also hashes its tokens")
    memo_size: NonNegativeInt = Field(
        0,
        description="remember the lines of this many recent prompts and reuse them for a "
        "repeated prompt (lines are seeded per prompt); 0 turns it off",
    )
    backend: Literal["transformers", "vllm"] = Field(
        "transformers",
        description="transformers (CPU or GPU), or vLLM on a CUDA GPU (extra llmrec[vllm]; "
        "falls back to transformers with a warning where it cannot run)",
    )
    vllm_gpu_memory_utilization: float = Field(
        0.5, gt=0.0, le=1.0, description="share of GPU memory vLLM may take (weights + KV cache)"
    )


@dataclass(frozen=True)
class SampledGenerations:
    """The G lines sampled for one prompt, in sampling order."""

    texts: list[str]  # each cut at its first newline, stripped
    mean_logprobs: list[float]  # per line, mean raw log-prob of its tokens (choice in _decode)
    num_new_tokens: list[int]  # tokens generated per line, the stopping token included
    token_ids: list[list[int]]  # the generated tokens, the stopping token included


def newline_token_ids(tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    """Ids of every token whose text contains a newline (129 in SmolLM2's vocabulary, ~0.3 s)."""
    texts = tokenizer.batch_decode([[token_id] for token_id in range(len(tokenizer))])
    return frozenset(token_id for token_id, text in enumerate(texts) if "\n" in text)


def stop_token_ids(tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    """Tokens that end a line: any token containing a newline, and every special token (eos,
    SmolLM2's <|endoftext|> and <|im_start|>), none of which belongs inside an item line."""
    return newline_token_ids(tokenizer) | frozenset(tokenizer.all_special_ids)


@torch.no_grad()
def sample_generations(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Prompt],
    config: GenerationConfig,
    stop_ids: Collection[int] | None = None,
) -> list[SampledGenerations]:
    """Sample `config.num_samples` lines for each prompt (text, or token ids as the model was
    trained on them). `stop_ids` defaults to `stop_token_ids(tokenizer)`; pass it when calling
    repeatedly, as computing it decodes the whole vocabulary.

    Prompts are decoded `config.batch_prompts` at a time (left-padded), each with its own
    generator seeded from `config.seed` and the prompt's tokens, so a prompt's lines do not depend
    on the other prompts or their order (up to float rounding of the padded batch).
    """
    stops = stop_token_ids(tokenizer) if stop_ids is None else stop_ids
    stop_tensor = torch.tensor(sorted(stops), dtype=torch.long, device=model.device)
    encoded = []
    for prompt in prompts:
        ids = tokenizer(prompt)["input_ids"] if isinstance(prompt, str) else list(map(int, prompt))
        if not ids:
            raise ValueError("cannot generate from an empty prompt")
        encoded.append(ids)
    results = []
    for start in range(0, len(encoded), config.batch_prompts):
        chunk = encoded[start : start + config.batch_prompts]
        for token_ids, logprob_sums in _decode(model, chunk, config, stop_tensor):
            results.append(_lines(tokenizer, token_ids, logprob_sums))
    return results


def _lines(
    tokenizer: PreTrainedTokenizerBase, token_ids: list[list[int]], logprob_sums: list[float]
) -> SampledGenerations:
    num_tokens = [len(tokens) for tokens in token_ids]
    return SampledGenerations(
        texts=[
            tokenizer.decode(tokens, skip_special_tokens=True).split("\n", 1)[0].strip()
            for tokens in token_ids
        ],
        mean_logprobs=[
            total / count for total, count in zip(logprob_sums, num_tokens, strict=True)
        ],
        num_new_tokens=num_tokens,
        token_ids=token_ids,
    )


def _decode(
    model: PreTrainedModel,
    prompts: list[list[int]],
    config: GenerationConfig,
    stop_ids: torch.Tensor,
) -> list[tuple[list[list[int]], list[float]]]:
    """Per prompt, the token ids and summed log-probs of its G lines.

    One left-padded prefill for all prompts, its KV cache copied G times per prompt, then every
    line decoded in one batch: on a CPU a decode step costs about the same for 4 rows as for 64
    (it reads every weight once), so batching prompts divides the decoding time.

    choice: a line's log-prob is taken under the model's raw distribution (temperature 1, no
    top-p), so it measures the model's confidence in the line whatever the sampling settings, and
    includes the stopping token (the model's belief that the line ends there).
    """
    device, is_greedy = model.device, config.temperature == 0
    per_prompt = 1 if is_greedy else config.num_samples  # greedy lines are all equal: decode one
    generators = [
        torch.Generator(device=device).manual_seed(prompt_seed(config, ids)) for ids in prompts
    ]
    ids, mask, positions = left_pad(prompts, device)  # (P, T) each
    # num_return_sequences would repeat each prompt in the batch and prefill it G times
    # (notes/llm-on-cpu.md); the cache is copied instead.
    cache, logits = cached_forward(
        model, None, input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1
    )
    cache.batch_repeat_interleave(per_prompt)
    logits = logits.repeat_interleave(per_prompt, dim=0)  # (A, V), A rows decoding
    mask = mask.repeat_interleave(per_prompt, dim=0)  # (A, T + steps)
    position = positions[:, -1].repeat_interleave(per_prompt) + 1  # (A,) of the next token
    active = torch.arange(len(prompts) * per_prompt, device=device)  # (A,) row of each line
    token_ids: list[list[int]] = [[] for _ in range(len(active))]
    logprob_sums = torch.zeros(len(active), dtype=torch.float64, device=device)
    for step in range(config.max_new_tokens):
        logits = logits.float()
        if is_greedy:
            next_tokens = logits.argmax(dim=-1)
        else:
            next_tokens = _sample(logits, config, _draws(active // per_prompt, generators))
        chosen = logits.gather(1, next_tokens[:, None])[:, 0] - logits.logsumexp(dim=-1)  # (A,)
        logprob_sums[active] += chosen.double()
        for row, token in zip(active.tolist(), next_tokens.tolist(), strict=True):
            token_ids[row].append(token)
        going_on = ~torch.isin(next_tokens, stop_ids)  # (A,)
        if step == config.max_new_tokens - 1 or not going_on.any():
            break
        if not going_on.all():  # finished lines leave the batch: they stop costing compute
            keep = going_on.nonzero()[:, 0]
            cache.batch_select_indices(keep)
            active, next_tokens, mask, position = (
                active[keep],
                next_tokens[keep],
                mask[keep],
                position[keep],
            )
        mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
        cache, logits = cached_forward(
            model,
            cache,
            input_ids=next_tokens[:, None],
            attention_mask=mask,
            position_ids=position[:, None],
        )
        position = position + 1
    sums = logprob_sums.tolist()
    copies = config.num_samples // per_prompt  # greedy: its one line, G times
    lines = []
    for prompt in range(len(prompts)):
        rows = list(range(prompt * per_prompt, (prompt + 1) * per_prompt)) * copies
        lines.append(([list(token_ids[row]) for row in rows], [sums[row] for row in rows]))
    return lines


def cached_forward(model: PreTrainedModel, cache, **inputs) -> tuple[Cache, torch.Tensor]:
    """One forward pass that keeps the KV cache (`cache` None: a prefill that starts one); returns
    (the cache, the last position's logits). transformers renamed the cache's argument and output
    field within 5.x (`past_key_values`, then `cache`): both spellings work."""
    name = _kv_cache_name()
    outputs = model(**inputs, use_cache=True, **({} if cache is None else {name: cache}))
    return getattr(outputs, name), outputs.logits[:, -1]


@functools.cache
def _kv_cache_name() -> str:
    from transformers.modeling_outputs import CausalLMOutputWithPast

    fields = CausalLMOutputWithPast.__dataclass_fields__
    return "cache" if "cache" in fields else "past_key_values"


def left_pad(
    prompts: Sequence[Sequence[int]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(P, T) token ids padded on the left (pad id 0, never attended), their attention mask and
    position ids (0 at each prompt's first real token), for one batched prefill."""
    width = max(len(ids) for ids in prompts)
    ids = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
    mask = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
    for row, tokens in enumerate(prompts):
        ids[row, width - len(tokens) :] = torch.tensor([int(t) for t in tokens], device=device)
        mask[row, width - len(tokens) :] = 1
    return ids, mask, (mask.cumsum(dim=-1) - 1).clamp(min=0)


def _draws(owners: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """(A, 1) uniform draws, each row's from its prompt's generator (rows grouped by prompt), so
    a prompt's stream is the same whatever else is in the batch."""
    counts = torch.bincount(owners, minlength=len(generators)).tolist()
    return torch.cat(
        [
            torch.rand((count, 1), generator=generator, dtype=torch.float64, device=owners.device)
            for generator, count in zip(generators, counts, strict=True)
            if count
        ]
    )


def _sample(logits: torch.Tensor, config: GenerationConfig, draws: torch.Tensor) -> torch.Tensor:
    """(A,) tokens drawn from softmax(logits / temperature), restricted to the top-p nucleus.

    Inverse-CDF sampling in float64 (`draws`: one uniform per row, searched in the cumulative sums):
    the same distribution as torch.multinomial, about 4x faster over a 49k vocabulary on CPU.
    """
    probabilities = torch.softmax(logits.double() / config.temperature, dim=-1)  # (A, V)
    order = None
    if config.top_p < 1.0:
        probabilities, order = probabilities.sort(dim=-1, descending=True, stable=True)
    cumulative = probabilities.cumsum(dim=-1)  # (A, V)
    if order is None:
        kept = torch.full_like(cumulative[:, :1], cumulative.shape[1], dtype=torch.long)
    else:  # nucleus: the shortest prefix, in descending order, whose mass reaches top_p
        kept = ((cumulative - probabilities) < config.top_p).sum(dim=-1, keepdim=True)  # (A, 1)
    mass = cumulative.gather(1, kept - 1)  # (A, 1)
    index = torch.searchsorted(cumulative, draws * mass, right=True)
    index = torch.minimum(index, kept - 1)  # guards the draw rounding up to `mass` exactly
    return (index if order is None else order.gather(1, index))[:, 0]


def prompt_seed(config: GenerationConfig, prompt_ids: list[int]) -> int:
    """A 63-bit seed from the config's seed and the prompt's tokens."""
    text = f"{config.seed}:" + ",".join(map(str, prompt_ids))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1
