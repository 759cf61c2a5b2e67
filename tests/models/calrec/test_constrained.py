"""Tests of models/calrec/constrained.py on the tiny random Llama with the real SmolLM2 tokenizer:
with a beam as wide as the catalogue the search ranks as exhaustive teacher-forced scoring does,
`stop_at_unique` decodes fewer tokens, and rankings hold only catalogue items, honour exclusions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from llmrec.data.catalogue import Item
from llmrec.models.backbone import Backbone, BackboneConfig, load_backbone
from llmrec.models.calrec.constrained import ConstrainedConfig, constrained_ranking
from llmrec.recommendations import top_k
from llmrec.retrieval.constrained import CatalogueTrie
from llmrec.text.templates import ItemLines, TextConfig

TITLES = [
    "Shea butter hand cream",
    "Shea butter body lotion",
    "Rose lip balm",
    "Rose lip gloss",
    "Rose lip balm",  # the same line as item 2: they share a leaf and a score
]
HISTORIES = [[0, 2], [3], [1, 4, 0]]


@pytest.fixture(scope="module")
def tiny(llm_cache_dir: Path) -> Backbone:
    return load_backbone(
        BackboneConfig(source="tiny", cache_dir=llm_cache_dir), show_progress=False
    )


@pytest.fixture(scope="module")
def lines(tiny: Backbone) -> ItemLines:
    items = [Item(f"i{index}", title=title) for index, title in enumerate(TITLES)]
    return ItemLines(items, tiny.tokenizer, TextConfig(fields=("title",), labelled=False))


@pytest.fixture(scope="module")
def trie(lines: ItemLines) -> CatalogueTrie:
    return CatalogueTrie(lines.ids, lines.newline)


@pytest.fixture(scope="module")
def prompts(lines: ItemLines) -> list[list[int]]:
    return [lines.prompt_ids(history) for history in HISTORIES]


class CountingModel(torch.nn.Module):
    """The tiny model, counting the tokens it decodes after each prompt's prefill."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.decoded = model, 0

    @property
    def device(self) -> torch.device:
        return self.model.device

    def forward(self, **inputs: Any) -> Any:
        if {"cache", "past_key_values"} & inputs.keys():  # decoding (names by transformers 5.x)
            self.decoded += inputs["input_ids"].numel()
        return self.model(**inputs)


def line_logprobs(tiny: Backbone, lines: ItemLines, prompts: list[list[int]]) -> torch.Tensor:
    """(B, n) exhaustive reference: each item's full line, newline included, teacher-forced."""
    scores = torch.zeros(len(prompts), len(lines.ids), dtype=torch.float64)
    for row, prompt in enumerate(prompts):
        for item in range(len(lines.ids)):
            target = lines.target_ids(item)
            with torch.no_grad():
                logits = tiny.model(input_ids=torch.tensor([prompt + target])).logits[0]
            positions = range(len(prompt) - 1, len(prompt) + len(target) - 1)
            logprobs = torch.log_softmax(logits.double(), dim=-1)[positions, target]
            scores[row, item] = logprobs.sum()
    return scores


@pytest.mark.parametrize(("k", "exclude"), [(5, None), (3, None), (4, [[2], [], [0, 1]])])
def test_a_full_beam_ranks_as_exhaustive_scoring(
    tiny: Backbone, lines: ItemLines, trie: CatalogueTrie, prompts, k, exclude
) -> None:
    recs = constrained_ranking(
        tiny.model, prompts, trie, k, exclude, beam_width=5, stop_at_unique=False
    )
    reference = top_k(line_logprobs(tiny, lines, prompts), k, exclude)
    np.testing.assert_array_equal(recs.item_indices, reference.item_indices)
    finite = np.isfinite(reference.scores)
    np.testing.assert_allclose(recs.scores[finite], reference.scores[finite], atol=1e-4)


@pytest.mark.parametrize("stop_at_unique", [False, True])
def test_prompts_searched_together_rank_as_one_at_a_time(
    tiny: Backbone, trie: CatalogueTrie, prompts, stop_at_unique: bool
) -> None:
    """Left-padded prompts of different lengths share the forward passes; each search ends on
    its own (early stop, finished beams), and rankings equal the one-prompt searches."""
    assert len({len(prompt) for prompt in prompts}) > 1
    exclude = [[2], [], [0, 1]]
    searched = {
        batch: constrained_ranking(
            tiny.model,
            prompts,
            trie,
            3,
            exclude,
            beam_width=2,
            stop_at_unique=stop_at_unique,
            batch_prompts=batch,
        )
        for batch in (1, 2, 16)
    }
    for batch in (2, 16):
        np.testing.assert_array_equal(searched[batch].item_indices, searched[1].item_indices)
        np.testing.assert_allclose(searched[batch].scores, searched[1].scores, atol=1e-5)


def test_stopping_at_a_unique_prefix_decodes_fewer_tokens(
    tiny: Backbone, lines: ItemLines, trie: CatalogueTrie, prompts
) -> None:
    decoded, scores = {}, {}
    for stop_at_unique in (False, True):
        model = CountingModel(tiny.model)
        recs = constrained_ranking(
            model, prompts, trie, 5, beam_width=5, stop_at_unique=stop_at_unique
        )
        decoded[stop_at_unique] = model.decoded
        scores[stop_at_unique] = np.take_along_axis(
            recs.scores, np.argsort(recs.item_indices, axis=1), axis=1
        )  # (B, n) by item index
    assert decoded[True] < decoded[False]
    # a prefix's log-prob bounds its line's from above: the rest of the line only adds <= 0
    assert (scores[True] >= scores[False] - 1e-4).all()


def test_renormalised_scores_make_stopping_at_a_unique_prefix_exact(
    tiny: Backbone, trie: CatalogueTrie, prompts
) -> None:
    """Over the allowed tokens only, a forced remainder adds log 1 = 0: same ranking, same
    scores, fewer tokens decoded."""
    results, decoded = {}, {}
    for stop_at_unique in (False, True):
        model = CountingModel(tiny.model)
        results[stop_at_unique] = constrained_ranking(
            model,
            prompts,
            trie,
            5,
            beam_width=5,
            stop_at_unique=stop_at_unique,
            renormalise=True,
        )
        decoded[stop_at_unique] = model.decoded
    full, early = results[False], results[True]
    np.testing.assert_array_equal(early.item_indices, full.item_indices)
    np.testing.assert_allclose(early.scores, full.scores, atol=1e-5)
    assert decoded[True] < decoded[False]
    # Renormalised line probabilities over the distinct lines sum to 1 (item 4 repeats item 2).
    distinct = full.item_indices != 4
    totals = np.array(
        [np.exp(row[mask]).sum() for row, mask in zip(full.scores, distinct, strict=True)]
    )
    np.testing.assert_allclose(totals, 1.0, atol=1e-4)


def test_rankings_are_catalogue_items_sorted_unique_and_exclusions_honoured(
    tiny: Backbone, trie: CatalogueTrie, prompts
) -> None:
    exclude = [[0, 3], [1], []]
    recs = constrained_ranking(tiny.model, prompts, trie, 3, exclude, beam_width=2)
    assert recs.item_indices.shape == recs.scores.shape == (3, 3)
    for items, scores, excluded in zip(recs.item_indices, recs.scores, exclude, strict=True):
        assert set(items.tolist()) <= set(range(trie.num_items)) - set(excluded)
        assert len(set(items.tolist())) == len(items)
        assert (np.diff(scores) <= 0).all()
    again = constrained_ranking(tiny.model, prompts, trie, 3, exclude, beam_width=2)
    np.testing.assert_array_equal(again.item_indices, recs.item_indices)
    np.testing.assert_array_equal(again.scores, recs.scores)


def test_items_not_found_are_padded_at_minus_infinity(
    tiny: Backbone, trie: CatalogueTrie, prompts
) -> None:
    """One beam cut after one token finds only the items under that token."""
    recs = constrained_ranking(
        tiny.model, prompts[:1], trie, 5, beam_width=1, stop_at_unique=False, max_new_tokens=1
    )
    found = np.isfinite(recs.scores[0])
    first_tokens = trie.children([]).tokens.tolist()
    assert len(first_tokens) == 2  # "Shea" and "Rose"
    under = [set(trie.items([token]).tolist()) for token in first_tokens]
    assert set(recs.item_indices[0][found].tolist()) in under
    assert len(set(recs.scores[0][found].tolist())) == 1  # they share the one token's score
    missing = sorted(set(range(5)) - set(recs.item_indices[0][found].tolist()))
    assert recs.item_indices[0][~found].tolist() == missing  # lowest index first


def test_config_defaults_and_strictness() -> None:
    config = ConstrainedConfig()
    assert (config.beam_width, config.stop_at_unique, config.max_new_tokens) == (10, True, 64)
    with pytest.raises(ValidationError):
        ConstrainedConfig(beam=3)
    with pytest.raises(ValidationError):
        ConstrainedConfig(beam_width=0)


def test_an_empty_prompt_is_refused(tiny: Backbone, trie: CatalogueTrie) -> None:
    with pytest.raises(ValueError, match="empty prompt"):
        constrained_ranking(tiny.model, [[]], trie, 3, beam_width=2)
