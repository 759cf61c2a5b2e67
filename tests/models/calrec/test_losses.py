from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from llmrec.models.calrec.losses import combine, info_nce, mean_pool, next_item_generation_loss


def test_mean_pool_averages_only_masked_positions() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_info_nce_hand_computed() -> None:
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positives = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    keys = torch.tensor([0, 1])
    tau = 0.5
    # positive 0 = (1,0): cos with anchors 1, 0; positive 1 = (1,1)/sqrt2: cos 1/sqrt2, 1/sqrt2
    loss_0 = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(0.0)))
    loss_1 = -math.log(0.5)
    expected = (loss_0 + loss_1) / 2
    assert math.isclose(info_nce(anchors, positives, keys, tau).item(), expected, rel_tol=1e-6)


def test_info_nce_masks_duplicate_targets() -> None:
    anchors = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    positives = anchors.clone()
    keys = torch.tensor([7, 7, 3])
    loss = info_nce(anchors, positives, keys, temperature=1.0)
    # Without the mask, row 0 would see its duplicate (cos 1) as a negative.
    row_0 = -math.log(math.exp(1.0) / (math.exp(1.0) + math.exp(0.0)))
    row_2 = -math.log(math.exp(1.0) / (math.exp(1.0) + 2 * math.exp(0.0)))
    assert math.isclose(loss.item(), (2 * row_0 + row_2) / 3, rel_tol=1e-6)


def test_next_item_generation_loss_counts_target_tokens_only() -> None:
    torch.manual_seed(0)
    vocab, hidden_size = 11, 4
    head = torch.nn.Linear(hidden_size, vocab, bias=False)
    hidden = torch.randn(1, 5, hidden_size)
    input_ids = torch.tensor([[3, 4, 5, 6, 7]])
    label_mask = torch.tensor([[False, False, False, True, True]])  # predict 6 and 7
    expected = F.cross_entropy(head(hidden[0, 2:4]), torch.tensor([6, 7]))
    torch.testing.assert_close(
        next_item_generation_loss(hidden, head, input_ids, label_mask), expected
    )
    # Changing history-side tokens' labels does not change the loss (only hidden states matter).
    other_ids = torch.tensor([[9, 9, 5, 6, 7]])
    torch.testing.assert_close(
        next_item_generation_loss(hidden, head, other_ids, label_mask), expected
    )


def test_combine_weights_and_skips_zero_terms() -> None:
    nig, tt, ut = torch.tensor(2.0), torch.tensor(4.0), torch.tensor(8.0)
    assert combine(nig, tt, ut, 0.25, 0.25).item() == 0.5 * 2 + 0.25 * 4 + 0.25 * 8
    assert combine(nig, None, None, 0.0, 0.0).item() == 2.0
