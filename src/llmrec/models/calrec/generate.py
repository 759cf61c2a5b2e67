"""CALRec's sampling of G candidate next-item lines per user (CALRec inference;
shared/papers/calrec.md sec. 6): one prefill per prompt, its KV cache copied G times, then G
samples decoded in parallel until a newline, an end token or `max_new_tokens`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Prompt = str | Sequence[int]  # text, or token ids already encoded


class GenerationConfig(BaseModel):
    """How many next-item lines to sample per user, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_samples: PositiveInt = Field(8, description="G: sampled lines per user")
    temperature: NonNegativeFloat = Field(
        0.7, description="sampling temperature; 0 decodes greedily (the G lines are then equal)"
    )
    top_p: float = Field(
        1.0, gt=0.0, le=1.0, description="nucleus sampling: smallest token set of this mass"
    )
    max_new_tokens: PositiveInt = Field(32, description="tokens generated per line at most")
    seed: int = Field(0, description="sampling seed; each prompt's stream also hashes its tokens")
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

    Prompts are decoded one at a time, each with its own generator seeded from `config.seed` and
    the prompt's tokens, so a prompt's lines do not depend on the other prompts or their order.
    """
    stops = stop_token_ids(tokenizer) if stop_ids is None else stop_ids
    stop_tensor = torch.tensor(sorted(stops), dtype=torch.long, device=model.device)
    results = []
    for prompt in prompts:
        is_text = isinstance(prompt, str)
        ids = tokenizer(prompt)["input_ids"] if is_text else [int(token) for token in prompt]
        if not ids:
            raise ValueError("cannot generate from an empty prompt")
        token_ids, logprob_sums = _decode(model, ids, config, stop_tensor)
        num_tokens = [len(tokens) for tokens in token_ids]
        texts = [
            tokenizer.decode(tokens, skip_special_tokens=True).split("\n", 1)[0].strip()
            for tokens in token_ids
        ]
        results.append(
            SampledGenerations(
                texts=texts,
                mean_logprobs=[
                    total / count for total, count in zip(logprob_sums, num_tokens, strict=True)
                ],
                num_new_tokens=num_tokens,
                token_ids=token_ids,
            )
        )
    return results


def _decode(
    model: PreTrainedModel,
    prompt_ids: list[int],
    config: GenerationConfig,
    stop_ids: torch.Tensor,
) -> tuple[list[list[int]], list[float]]:
    """Token ids and summed log-probs of the G lines for one prompt.

    choice: a line's log-prob is taken under the model's raw distribution (temperature 1, no
    top-p), so it measures the model's confidence in the line whatever the sampling settings, and
    includes the stopping token (the model's belief that the line ends there).
    """
    is_greedy = config.temperature == 0
    num_rows = 1 if is_greedy else config.num_samples  # greedy lines are all equal: decode one
    generator = torch.Generator(device=model.device).manual_seed(prompt_seed(config, prompt_ids))
    prompt = torch.tensor([prompt_ids], dtype=torch.long, device=model.device)  # (1, T)
    # One prefill, then its KV cache is copied per sample (num_return_sequences would repeat the
    # prompt in the batch and prefill it G times; notes/llm-on-cpu.md).
    outputs = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
    cache = outputs.cache
    cache.batch_repeat_interleave(num_rows)
    logits = outputs.logits[:, -1].expand(num_rows, -1)  # (A, V), A = rows still decoding
    active = torch.arange(num_rows, device=model.device)  # (A,) row of each decoding sample
    token_ids: list[list[int]] = [[] for _ in range(num_rows)]
    logprob_sums = torch.zeros(num_rows, dtype=torch.float64, device=model.device)
    for step in range(config.max_new_tokens):
        logits = logits.float()
        next_tokens = logits.argmax(dim=-1) if is_greedy else _sample(logits, config, generator)
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
            active, next_tokens = active[keep], next_tokens[keep]
        outputs = model(input_ids=next_tokens[:, None], cache=cache, use_cache=True)
        cache, logits = outputs.cache, outputs.logits[:, -1]
    sums = logprob_sums.tolist()
    if is_greedy:
        return [list(token_ids[0]) for _ in range(config.num_samples)], sums * config.num_samples
    return token_ids, sums


def _sample(
    logits: torch.Tensor, config: GenerationConfig, generator: torch.Generator
) -> torch.Tensor:
    """(A,) tokens drawn from softmax(logits / temperature), restricted to the top-p nucleus.

    Inverse-CDF sampling in float64 (one uniform draw per row, searched in the cumulative sums):
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
    draws = torch.rand(mass.shape, generator=generator, dtype=mass.dtype, device=mass.device)
    index = torch.searchsorted(cumulative, draws * mass, right=True)
    index = torch.minimum(index, kept - 1)  # guards the draw rounding up to `mass` exactly
    return (index if order is None else order.gather(1, index))[:, 0]


def prompt_seed(config: GenerationConfig, prompt_ids: list[int]) -> int:
    """A 63-bit seed from the config's seed and the prompt's tokens."""
    text = f"{config.seed}:" + ",".join(map(str, prompt_ids))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1
