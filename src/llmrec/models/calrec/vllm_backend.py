"""Optional vLLM generation for CALRec on a GPU (extra `llmrec[vllm]`, config
`generation.backend: vllm`): the same G sampled lines per prompt as `generate.sample_generations`,
from vLLM's batched engine (paged KV cache, prefix caching, continuous batching).

Without vLLM or a CUDA GPU, `make_sampler` falls back to the transformers path with a warning
that names the reason, so a config written for a GPU machine still runs anywhere.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import torch

from llmrec.models.calrec.generate import (
    GenerationConfig,
    SampledGenerations,
    prompt_seed,
    sample_generations,
)

logger = logging.getLogger(__name__)
Sampler = Callable[[Sequence[Sequence[int]]], list[SampledGenerations]]
INSTALL_HINT = "pip install 'llmrec[vllm]' on a machine with a CUDA GPU"


def vllm_unavailable_reason() -> str | None:
    """Why vLLM cannot run here, or None when it can."""
    if importlib.util.find_spec("vllm") is None:
        return f"vLLM is not installed ({INSTALL_HINT})"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    return None


def make_sampler(
    language_model,
    tokenizer,
    config: GenerationConfig,
    stop_ids: Collection[int],
    model_folder: Callable[[], Path],
) -> Sampler:
    """The sampler `config.backend` asks for (remembering recent prompts' lines when
    `config.memo_size` > 0); `model_folder()` gives a saved copy of the model for vLLM (called
    only when vLLM is used)."""
    sampler: Sampler = functools.partial(
        sample_generations, language_model, tokenizer, config=config, stop_ids=stop_ids
    )
    if config.backend == "vllm":
        reason = vllm_unavailable_reason()
        if reason is None:
            sampler = VllmSampler(model_folder(), config, stop_ids)
        else:
            logger.warning(
                "generation.backend is vllm but %s: generating with transformers", reason
            )
    return MemoSampler(sampler, config.memo_size) if config.memo_size else sampler


class MemoSampler:
    """A sampler that remembers the lines of its `size` most recently seen prompts. Lines are
    seeded per prompt, so a repeated prompt would be sampled the same again (up to float
    rounding of the batch it shares): reuse saves only the decoding."""

    def __init__(self, sampler: Sampler, size: int) -> None:
        self.sampler, self.size = sampler, size
        self.memo: OrderedDict[tuple[int, ...], SampledGenerations] = OrderedDict()

    def __call__(self, prompts: Sequence[Sequence[int]]) -> list[SampledGenerations]:
        keys = [tuple(int(token) for token in prompt) for prompt in prompts]
        missing = list(dict.fromkeys(key for key in keys if key not in self.memo))
        fresh = dict(zip(missing, self.sampler(missing), strict=True)) if missing else {}
        results = [fresh[key] if key in fresh else self.memo[key] for key in keys]
        for key in keys:
            self.memo[key] = fresh.get(key) or self.memo[key]
            self.memo.move_to_end(key)
        while len(self.memo) > self.size:
            self.memo.popitem(last=False)
        return results


class VllmSampler:
    """G lines per prompt from a vLLM engine over a saved model folder (built once)."""

    def __init__(self, folder: Path, config: GenerationConfig, stop_ids: Collection[int]) -> None:
        from vllm import LLM

        self.config, self.stop_ids = config, sorted(int(token) for token in stop_ids)
        self.engine = LLM(
            model=str(folder),
            seed=config.seed,
            gpu_memory_utilization=config.vllm_gpu_memory_utilization,
            enable_prefix_caching=True,  # the G samples of a prompt share its prefill
        )

    def __call__(self, prompts: Sequence[Sequence[int]]) -> list[SampledGenerations]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        # vLLM refuses n > 1 when greedy: one line, repeated G times (as the transformers path)
        greedy = self.config.temperature == 0
        requests, params = [], []
        for prompt in prompts:
            ids = [int(token) for token in prompt]
            requests.append(TokensPrompt(prompt_token_ids=ids))
            params.append(
                SamplingParams(
                    n=1 if greedy else self.config.num_samples,
                    temperature=self.config.temperature,
                    top_p=self.config.top_p,
                    max_tokens=self.config.max_new_tokens,
                    stop_token_ids=self.stop_ids,
                    seed=prompt_seed(self.config, ids) % 2**31,  # per prompt, as the CPU path
                    logprobs=0,  # fills cumulative_logprob
                )
            )
        outputs = self.engine.generate(requests, params, use_tqdm=False)
        copies = self.config.num_samples if greedy else 1
        return [to_sampled_generations(output, copies) for output in outputs]


def to_sampled_generations(request_output, copies: int = 1) -> SampledGenerations:
    """One vLLM RequestOutput as our record, its lines each repeated `copies` times. choice: a
    line's mean log-prob is vLLM's cumulative log-prob over its tokens (the stopping token
    included when vLLM returns it)."""
    texts, means, counts, token_ids = [], [], [], []
    for completion in request_output.outputs:
        tokens = [int(token) for token in completion.token_ids]
        count = max(len(tokens), 1)
        texts.append(completion.text.split("\n", 1)[0].strip())
        means.append(float(completion.cumulative_logprob or 0.0) / count)
        counts.append(len(tokens))
        token_ids.append(tokens)
    return SampledGenerations(texts * copies, means * copies, counts * copies, token_ids * copies)
