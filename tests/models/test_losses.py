from __future__ import annotations

import torch
import torch.nn.functional as F

from llmrec.models.losses import full_softmax_cross_entropy


def test_fused_cross_entropy_matches_the_plain_one_in_value_and_gradients() -> None:
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(7, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    table = torch.randn(11, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 3, 3, 10, 5, 1, 2])
    expected = F.cross_entropy(hidden @ table.T, targets)
    expected_grads = torch.autograd.grad(expected, (hidden, table))
    fused = full_softmax_cross_entropy(hidden, table, targets)
    fused_grads = torch.autograd.grad(fused, (hidden, table))
    torch.testing.assert_close(fused, expected)
    for got, want in zip(fused_grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_hand_computed_value() -> None:
    hidden = torch.tensor([[1.0, 0.0]])
    table = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # logits 2, 0, 0
    loss = full_softmax_cross_entropy(hidden, table, torch.tensor([0]))
    expected = -torch.log(torch.exp(torch.tensor(2.0)) / (torch.exp(torch.tensor(2.0)) + 2))
    torch.testing.assert_close(loss, expected)
