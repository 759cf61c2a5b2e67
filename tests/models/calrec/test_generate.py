"""Tests of models/calrec/generate.py on the tiny random Llama with the real SmolLM2 tokenizer:
shared-prefill greedy equals `model.generate`, sampled lines score as a plain forward does, seeding,
newline and end-token stops, and the sampler's distribution."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pydantic import ValidationError

from llmrec.models.backbone import Backbone, BackboneConfig, load_backbone
from llmrec.models.calrec.generate import (
    GenerationConfig,
    _sample,
    sample_generations,
    stop_token_ids,
)

NEWLINE = 198  # "\n" in SmolLM2's vocabulary
# The random tiny model mostly repeats its last input token; this prompt gives a varied line.
VARIED_PROMPT = "Hello world"
PROMPTS = [VARIED_PROMPT, "Title: Shea butter hand cream\nTitle:"]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Backbone:
    """One tiny backbone for the module; its tokenizer is converted once into a session cache."""
    cache_dir = tmp_path_factory.mktemp("llmrec-cache")
    return load_backbone(BackboneConfig(source="tiny", cache_dir=cache_dir), show_progress=False)


@pytest.fixture(scope="session")
def stops(tiny: Backbone) -> frozenset[int]:
    return stop_token_ids(tiny.tokenizer)


class NewlineAt(torch.nn.Module):
    """The tiny model, with the lines of `rows` (all by default) forced to end in "\\n" as their
    token number `position`."""

    def __init__(self, model: torch.nn.Module, position: int, rows: slice = slice(None)) -> None:
        super().__init__()
        self.model, self.position, self.rows, self.calls = model, position, rows, 0

    @property
    def device(self) -> torch.device:
        return self.model.device

    def forward(self, **inputs: Any) -> Any:
        outputs = self.model(**inputs)
        if self.calls == self.position:  # call 0 is the prefill: it predicts token 0
            outputs.logits[self.rows, :, NEWLINE] = 1e4
        self.calls += 1
        return outputs


def test_stop_tokens_are_the_newline_tokens_and_the_special_ones(
    tiny: Backbone, stops: frozenset[int]
) -> None:
    """Derived from the byte-level vocabulary itself: "Ċ" is how its tokens spell a newline."""
    tokens = tiny.tokenizer.convert_ids_to_tokens(list(range(len(tiny.tokenizer))))
    newlines = {token_id for token_id, token in enumerate(tokens) if "Ċ" in token}
    assert stops == newlines | set(tiny.tokenizer.all_special_ids)
    assert {NEWLINE, 0, 1, 2} <= stops  # <|endoftext|>, <|im_start|>, <|im_end|> (eos)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_equals_model_generate(tiny: Backbone, stops: frozenset[int], prompt: str) -> None:
    config = GenerationConfig(temperature=0, num_samples=3, max_new_tokens=6)
    result = sample_generations(tiny.model, tiny.tokenizer, [prompt], config, stops)[0]
    inputs = tiny.tokenizer([prompt], return_tensors="pt")
    with torch.no_grad():
        reference = tiny.model.generate(
            **inputs,
            max_new_tokens=6,
            do_sample=False,
            eos_token_id=sorted(stops),
            output_logits=True,
            return_dict_in_generate=True,
        )
    expected = reference.sequences[0, inputs["input_ids"].shape[1] :].tolist()
    logits = torch.cat(reference.logits)  # (steps, V): raw, before any processing
    logprobs = torch.log_softmax(logits.double(), dim=-1)[range(len(expected)), expected]
    assert result.token_ids == [expected] * 3
    assert result.num_new_tokens == [len(expected)] * 3
    assert result.mean_logprobs == pytest.approx([logprobs.mean().item()] * 3, abs=1e-5)
    if prompt == VARIED_PROMPT:
        assert len(set(expected)) > 1


def test_sampled_lines_score_as_one_plain_forward(tiny: Backbone) -> None:
    """The G rows decoded from the copied cache match a cache-free forward pass, also after a
    finished row has left the batch."""
    config = GenerationConfig(num_samples=3, max_new_tokens=4, temperature=1.0)
    model = NewlineAt(tiny.model, position=1, rows=slice(0, 1))  # row 0 ends after 2 tokens
    result = sample_generations(model, tiny.tokenizer, [VARIED_PROMPT], config, {NEWLINE})
    assert result[0].num_new_tokens == [2, 4, 4]
    prompt_ids = tiny.tokenizer(VARIED_PROMPT)["input_ids"]
    lines = zip(result[0].token_ids[1:], result[0].mean_logprobs[1:], strict=True)
    for tokens, mean_logprob in lines:
        sequence = torch.tensor([prompt_ids + tokens])
        with torch.no_grad():
            logits = tiny.model(input_ids=sequence, use_cache=False).logits[0]  # (T, V)
        positions = range(len(prompt_ids) - 1, sequence.shape[1] - 1)
        logprobs = torch.log_softmax(logits.double(), dim=-1)[positions, tokens]
        assert mean_logprob == pytest.approx(logprobs.mean().item(), abs=1e-4)
    assert len(set(map(tuple, result[0].token_ids))) > 1  # sampling, not G copies


def test_stop_ids_end_a_line(tiny: Backbone) -> None:
    config = GenerationConfig(temperature=0, num_samples=1, max_new_tokens=6)
    free = sample_generations(tiny.model, tiny.tokenizer, [VARIED_PROMPT], config, frozenset())
    tokens = free[0].token_ids[0]
    assert len(tokens) == 6
    stop = tokens[3]
    stopped = sample_generations(tiny.model, tiny.tokenizer, [VARIED_PROMPT], config, {stop})
    assert stopped[0].token_ids[0] == tokens[: tokens.index(stop) + 1]


def test_newline_ends_the_line_and_cuts_the_text(tiny: Backbone, stops: frozenset[int]) -> None:
    config = GenerationConfig(num_samples=4, max_new_tokens=8)
    model = NewlineAt(tiny.model, position=2)
    result = sample_generations(model, tiny.tokenizer, [VARIED_PROMPT], config, stops)[0]
    assert result.num_new_tokens == [3] * 4
    for tokens, text in zip(result.token_ids, result.texts, strict=True):
        assert tokens[2] == NEWLINE
        assert text == tiny.tokenizer.decode(tokens[:2], skip_special_tokens=True).strip()
        assert "\n" not in text


def test_g_samples_within_max_new_tokens(tiny: Backbone) -> None:
    config = GenerationConfig(num_samples=5, max_new_tokens=3)
    results = sample_generations(tiny.model, tiny.tokenizer, PROMPTS, config, frozenset())
    assert len(results) == 2
    for result in results:
        assert len(result.texts) == len(result.mean_logprobs) == len(result.token_ids) == 5
        assert result.num_new_tokens == [3] * 5
        assert all(logprob < 0 for logprob in result.mean_logprobs)


def test_same_seed_same_lines_whatever_the_prompt_order(
    tiny: Backbone, stops: frozenset[int]
) -> None:
    config = GenerationConfig(num_samples=4, max_new_tokens=4, seed=7)
    first = sample_generations(tiny.model, tiny.tokenizer, PROMPTS, config, stops)
    again = sample_generations(tiny.model, tiny.tokenizer, PROMPTS[::-1], config, stops)
    assert first == again[::-1]
    other_seed = config.model_copy(update={"seed": 8})
    other = sample_generations(tiny.model, tiny.tokenizer, PROMPTS, other_seed, stops)
    assert [result.token_ids for result in other] != [result.token_ids for result in first]


def test_batched_prompts_decode_as_one_at_a_time(tiny: Backbone, stops: frozenset[int]) -> None:
    """Left-padded batches of prompts of different lengths give each prompt the lines it gets
    alone (same seeded stream), with log-probs equal up to float rounding."""
    prompts = [*PROMPTS, "Title: a much longer line of text about a lipstick\nTitle: Nail"]
    config = GenerationConfig(num_samples=3, max_new_tokens=5, seed=3)
    alone = config.model_copy(update={"batch_prompts": 1})
    batched = sample_generations(tiny.model, tiny.tokenizer, prompts, config, stops)
    single = sample_generations(tiny.model, tiny.tokenizer, prompts, alone, stops)
    assert len({len(tiny.tokenizer(prompt)["input_ids"]) for prompt in prompts}) == 3
    for together, apart in zip(batched, single, strict=True):
        assert together.token_ids == apart.token_ids
        assert together.mean_logprobs == pytest.approx(apart.mean_logprobs, abs=1e-5)
    greedy = config.model_copy(update={"temperature": 0.0})
    greedy_alone = greedy.model_copy(update={"batch_prompts": 1})
    assert [
        r.token_ids for r in sample_generations(tiny.model, tiny.tokenizer, prompts, greedy)
    ] == [
        r.token_ids for r in sample_generations(tiny.model, tiny.tokenizer, prompts, greedy_alone)
    ]


def test_token_id_prompts_equal_text_prompts(tiny: Backbone, stops: frozenset[int]) -> None:
    config = GenerationConfig(num_samples=2, max_new_tokens=3)
    ids = tiny.tokenizer(VARIED_PROMPT)["input_ids"]
    from_ids = sample_generations(tiny.model, tiny.tokenizer, [ids], config, stops)
    assert from_ids == sample_generations(
        tiny.model, tiny.tokenizer, [VARIED_PROMPT], config, stops
    )
    with pytest.raises(ValueError, match="empty prompt"):
        sample_generations(tiny.model, tiny.tokenizer, [[]], config, stops)


@pytest.mark.parametrize(
    ("temperature", "top_p", "expected"),
    [
        (1.0, 1.0, [0.5, 0.3, 0.15, 0.05]),
        (0.5, 1.0, [0.25 / 0.365, 0.09 / 0.365, 0.0225 / 0.365, 0.0025 / 0.365]),  # p ** 2
        (1.0, 0.8, [0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0]),  # 0.5 + 0.3 reaches 0.8
        (1.0, 0.81, [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0]),
    ],
)
def test_sampler_draws_from_the_tempered_nucleus(
    temperature: float, top_p: float, expected: list[float]
) -> None:
    probabilities = torch.tensor([[0.15, 0.5, 0.05, 0.3]])  # shuffled: order must not matter
    logits = probabilities.log().expand(40_000, -1)
    config = GenerationConfig(temperature=temperature, top_p=top_p)
    uniforms = torch.rand((len(logits), 1), generator=torch.Generator().manual_seed(0))
    draws = _sample(logits, config, uniforms.double())
    counts = torch.bincount(draws, minlength=4).double() / len(draws)
    frequencies = counts[[1, 3, 0, 2]].tolist()  # back to descending probability order
    assert frequencies == pytest.approx(expected, abs=0.01)
    if 0.0 in expected:
        assert frequencies[expected.index(0.0)] == 0.0


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": -0.1},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"num_samples": 0},
        {"max_new_tokens": 0},
        {"batch_prompts": 0},
        {"beams": 4},
    ],
)
def test_config_rejects_bad_values(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GenerationConfig(**fields)
