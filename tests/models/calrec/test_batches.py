from __future__ import annotations

import numpy as np

from llmrec.models.calrec.batches import Example, ExampleBatches, build_examples, collate
from tests.training.helpers import assert_streams_from_any_position


class FakeLines:
    """Item i's line is the tokens (10 + i, 20 + i); newline is token 1."""

    newline = (1,)
    ids = tuple((10 + i, 20 + i) for i in range(5))

    def prompt_ids(self, history):
        return [t for i in history for t in (*self.ids[int(i)], 1)]


def test_last_target_examples_use_the_whole_history() -> None:
    examples = build_examples([np.array([0, 1, 2])], FakeLines(), "last")
    assert examples == [Example((10, 20, 1, 11, 21, 1), (12, 22), (1,), 2)]


def test_all_targets_make_one_example_per_transition_with_key_offset() -> None:
    examples = build_examples([np.array([0, 1, 2]), np.array([3])], FakeLines(), "all", 100)
    assert [e.key for e in examples] == [101, 102]
    assert examples[0].prompt == (10, 20, 1)


def test_collate_masks() -> None:
    batch = collate([Example((5, 6), (7, 8), (1,), 3), Example((5,), (9,), (1,), 4)], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 1], [5, 9, 1, 0, 0]]
    assert batch["attention_mask"].sum(1).tolist() == [5, 3]
    assert batch["user_mask"][0].tolist() == [True, True, False, False, False]
    assert batch["target_mask"][0].tolist() == [False, False, True, True, False]
    assert batch["label_mask"][1].tolist() == [False, True, True, False, False]
    assert batch["item_ids"].tolist() == [[7, 8], [9, 0]]
    assert batch["keys"].tolist() == [3, 4]


def test_batches_are_deterministic_per_epoch_and_mixture_follows_weights() -> None:
    pool_a = [Example((1,), (2,), (1,), i) for i in range(50)]
    pool_b = [Example((1,), (3,), (1,), 1000 + i) for i in range(50)]
    batches = ExampleBatches(
        [pool_a, pool_b], 10, 0, seed=0, weights=[9.0, 1.0], examples_per_epoch=2000
    )
    first, again = list(batches.batches(0)), list(batches.batches(0))
    assert all((a["keys"] == b["keys"]).all() for a, b in zip(first, again, strict=True))
    keys = np.concatenate([b["keys"].numpy() for b in first])
    share_a = (keys < 1000).mean()
    assert 0.85 < share_a < 0.95
    assert not all(
        (a["keys"] == b["keys"]).all() for a, b in zip(first, batches.batches(1), strict=True)
    )
    assert_streams_from_any_position(batches, epoch=1)
    one_pool = ExampleBatches([pool_a], 7, 0, seed=0)
    assert one_pool.num_batches(0) == 8  # 50 examples, 7 at a time
    assert_streams_from_any_position(one_pool, epoch=1)
