"""Packed CALRec training (`extensions.packing`): the budget cut, the batch layout, prefix means,
distinct targets, and the equivalence with one example per transition (`all`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from llmrec.models.calrec.batches import build_examples, collate
from llmrec.models.calrec.losses import mean_pool
from llmrec.models.calrec.model import CALRec, CALRecConfig
from llmrec.models.calrec.packing import (
    PackedBatches,
    PackedSequence,
    build_packed,
    collate_packed,
    cut_to_budget,
    distinct_targets,
    pack_sequence,
    packed_vectors,
)


class FakeLines:
    """Item i's line is the tokens (10 + i, 20 + i); newline is token 1; preamble token 2."""

    newline = (1,)
    preamble = (2,)
    ids = tuple((10 + i, 20 + i) for i in range(6))


def test_the_budget_keeps_the_most_recent_whole_lines() -> None:
    assert cut_to_budget([3, 3, 3], fixed=1, budget=100) == 0
    assert cut_to_budget([3, 3, 3], fixed=1, budget=7) == 1  # 1 + 3 + 3: two lines fit exactly
    assert cut_to_budget([3, 3, 3], fixed=1, budget=6) == 2  # never part of a line
    assert cut_to_budget([3, 3, 3], fixed=1, budget=0) == 3


def test_pack_sequence_writes_lines_with_their_spans_and_keys() -> None:
    packed = pack_sequence(np.array([0, 1, 2]), FakeLines(), budget=100, key_offset=50)
    assert packed == PackedSequence(
        tokens=(2, 10, 20, 1, 11, 21, 1, 12, 22, 1),
        starts=(1, 4, 7),
        ends=(3, 6, 9),
        keys=(50, 51, 52),
    )
    cut = pack_sequence(np.array([0, 1, 2]), FakeLines(), budget=7)  # preamble + 2 lines of 3
    assert cut.tokens == (2, 11, 21, 1, 12, 22, 1) and cut.keys == (1, 2)
    assert pack_sequence(np.array([0, 1, 2]), FakeLines(), budget=6) is None  # one line fits
    assert build_packed([np.array([3]), np.array([4, 5])], FakeLines(), 100)[0].keys == (4, 5)


def test_collate_packed_masks_every_line_from_the_second() -> None:
    sequences = build_packed([np.array([0, 1, 2]), np.array([3, 4])], FakeLines(), 100)
    batch = collate_packed(sequences, pad_id=0)
    assert batch["input_ids"][1].tolist() == [2, 13, 23, 1, 14, 24, 1, 0, 0, 0]
    assert batch["label_mask"][0].tolist() == [False] * 4 + [True] * 6
    assert batch["label_mask"][1].tolist() == [False] * 4 + [True] * 3 + [False] * 3
    assert batch["is_target"].tolist() == [[False, True, True], [False, True, False]]
    assert batch["line_keys"].tolist() == [[0, 1, 2], [3, 4, -1]]
    assert all(value.shape[0] == 2 for value in batch.values())  # split by user under DDP


def test_prefix_means_equal_the_masked_means_they_replace() -> None:
    batch = collate_packed(
        build_packed([np.array([0, 1, 2]), np.array([3, 4])], FakeLines(), 100), 0
    )
    hidden = torch.randn(2, 10, 3, dtype=torch.float64)
    vectors = packed_vectors(hidden, batch)
    positions = torch.arange(10)
    expected_user, expected_line = [], []
    for row, line in [(0, 1), (0, 2), (1, 1)]:
        start, end = int(batch["line_starts"][row, line]), int(batch["line_ends"][row, line])
        expected_user.append(mean_pool(hidden[row : row + 1], positions[None] < start))
        line_mask = (positions >= start) & (positions < end)
        expected_line.append(mean_pool(hidden[row : row + 1], line_mask[None]))
    torch.testing.assert_close(vectors.user, torch.cat(expected_user), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(vectors.in_context, torch.cat(expected_line), rtol=1e-12, atol=0)
    assert vectors.keys.tolist() == [1, 2, 4]


def test_each_distinct_target_reaches_the_item_tower_once() -> None:
    # targets: user 0 -> 1, 2, 1; user 1 -> 2, 5 (item 2 twice across users, item 1 twice)
    sequences = build_packed([np.array([0, 1, 2, 1]), np.array([3, 2, 5])], FakeLines(), 100)
    targets = distinct_targets(collate_packed(sequences, pad_id=0), pad_id=0)
    assert targets.item_ids.tolist() == [[11, 21], [12, 22], [15, 25]]
    assert targets.item_mask.all()
    assert targets.inverse.tolist() == [0, 1, 0, 1, 2]


def test_packed_batches_group_users_of_similar_length() -> None:
    """Seven users of 2..8 lines, batches of 2: grouped, each batch holds neighbours in length
    and the short batch comes last; every user once per epoch, the same batches again."""
    sequences = [np.arange(n) % 6 for n in (5, 2, 8, 3, 7, 4, 6)]
    packed = build_packed(sequences, FakeLines(), 100)
    padding = {}
    for grouped in (True, False):
        batches = PackedBatches([packed], 2, 0, seed=3, group_by_length=grouped)
        epoch = list(batches.batches(0))
        lines = [sorted(b["is_target"].sum(1).add(1).tolist(), reverse=True) for b in epoch]
        assert sorted(n for batch in lines for n in batch) == list(range(2, 9))
        again = list(batches.batches(0))
        assert [b["input_ids"].tolist() for b in again] == [b["input_ids"].tolist() for b in epoch]
        padding[grouped] = sum(int((~b["attention_mask"]).sum()) for b in epoch)
        if grouped:
            assert sorted(lines) == [[2], [4, 3], [6, 5], [8, 7]] and lines[-1] == [2]
    assert padding[True] == 9 < padding[False]  # grouped: one line (3 tokens) per full batch


def _tiny_model(cache, **fields) -> CALRec:
    from tests.conftest import make_toy_dataset

    config = CALRecConfig.model_validate(
        {
            "backbone": {"source": "tiny", "cache_dir": str(cache)},
            "text": {"fields": ["title"], "max_history_items": 50, "preamble": "History:"},
            **fields,
        }
    )
    return CALRec(config, make_toy_dataset().catalogue)


def test_packed_equals_one_example_per_transition(llm_cache_dir) -> None:
    """One user, the budget not binding: the packed losses (NIG, TT, UT) and vectors equal those
    of the `all` examples of the same user in one batch. Float64, so only summation order
    differs. The sequence repeats target item 3, so duplicate masking is exercised."""
    model = _tiny_model(llm_cache_dir, alpha=0.2, beta=0.3, training_targets="all")
    network = model.network.to(torch.float64).eval()
    sequence = [np.array([0, 5, 3, 7, 3, 9])]
    pad = model.tokenizer.pad_token_id
    every = collate(build_examples(sequence, model.lines, "all"), pad)
    packed = collate_packed(build_packed(sequence, model.lines, budget=10_000), pad)
    with torch.no_grad():
        separate, together = network(every), network(packed)
        towers = {
            name: network.contrastive_inputs(
                network.hidden_states(b["input_ids"], b["attention_mask"]), b
            )
            for name, b in (("all", every), ("packed", packed))
        }
    assert separate.num_terms == together.num_terms  # the same target tokens
    for part in ("nig", "tt", "ut"):
        torch.testing.assert_close(together.parts[part], separate.parts[part], rtol=1e-10, atol=0)
    torch.testing.assert_close(together.total, separate.total, rtol=1e-10, atol=0)
    for field in ("user", "in_context"):
        torch.testing.assert_close(
            getattr(towers["packed"], field), getattr(towers["all"], field), rtol=1e-10, atol=1e-12
        )
    assert towers["packed"].keys.tolist() == towers["all"].keys.tolist() == [5, 3, 7, 3, 9]
    assert len(towers["packed"].item_ids) == 4  # item 3 once; `all` encodes it twice
    # The NIG of `all` is the token-weighted mean of its examples' losses: the packed one too.
    per_example = [network(collate([e], pad)) for e in build_examples(sequence, model.lines, "all")]
    weighted = sum(o.parts["nig"] * o.num_terms for o in per_example) / together.num_terms
    torch.testing.assert_close(together.parts["nig"], weighted, rtol=1e-10, atol=0)


def test_packing_needs_every_transition_and_history_list_needs_generations(
    llm_cache_dir,
) -> None:
    with pytest.raises(ValidationError, match="training_targets: all"):
        _tiny_model(llm_cache_dir, extensions={"packing": {"token_budget": 64}})
    with pytest.raises(ValidationError, match="history_list joins the round-robin"):
        _tiny_model(llm_cache_dir, extensions={"retrieval": "dense", "history_list": "first"})
