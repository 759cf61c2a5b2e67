from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmrec.models.losses import full_softmax_cross_entropy, sampled_softmax_cross_entropy


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


def _fp32_inputs(device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(16, 8, generator=generator).to(device).requires_grad_()
    table = torch.randn(50, 8, generator=generator).to(device).requires_grad_()
    targets = torch.randint(0, 50, (16,), generator=generator).to(device)
    return hidden, table, targets


@pytest.mark.parametrize(
    ("device", "dtype"),
    [
        ("cpu", torch.bfloat16),
        pytest.param("cuda", torch.bfloat16, marks=pytest.mark.gpu),
        pytest.param("cuda", torch.float16, marks=pytest.mark.gpu),
    ],
)
def test_under_autocast_it_matches_fp32_and_returns_fp32_gradients(
    device: str, dtype: torch.dtype
) -> None:
    """The fused function declares its autocast behaviour (issue 20): the product runs in the
    autocast dtype, the loss and the gradients of fp32 inputs come back fp32, close to fp32's."""
    hidden, table, targets = _fp32_inputs(device)
    expected = F.cross_entropy(hidden @ table.T, targets)
    expected_grads = torch.autograd.grad(expected, (hidden, table))
    with torch.autocast(device, dtype=dtype):
        fused = full_softmax_cross_entropy(hidden, table, targets)
    fused_grads = torch.autograd.grad(fused, (hidden, table))
    assert fused.dtype == torch.float32
    torch.testing.assert_close(fused, expected, rtol=2e-2, atol=2e-2)
    for got, want in zip(fused_grads, expected_grads, strict=True):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=5e-2, atol=2e-2)


def test_bf16_inputs_without_autocast_keep_their_dtype() -> None:
    """bf16 weights (a bf16 backbone) without autocast: an fp32 loss, bf16 gradients."""
    hidden, table, targets = (t.detach() for t in _fp32_inputs())
    hidden = hidden.bfloat16().requires_grad_()
    table = table.bfloat16().requires_grad_()
    loss = full_softmax_cross_entropy(hidden, table, targets)
    grads = torch.autograd.grad(loss, (hidden, table))
    expected = F.cross_entropy((hidden @ table.T).float(), targets)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, expected)
    assert [grad.dtype for grad in grads] == [torch.bfloat16, torch.bfloat16]


def test_sampled_softmax_is_the_target_against_the_drawn_negatives() -> None:
    """Value and gradients equal a plain cross-entropy of each row over [its target, its N drawn
    negatives], the draw being torch's next `randint` (a seeded or resumed run draws the same)."""
    hidden, table, targets = _fp32_inputs()
    torch.manual_seed(3)
    loss = sampled_softmax_cross_entropy(hidden, table, targets, num_negatives=20)
    grads = torch.autograd.grad(loss, (hidden, table))
    torch.manual_seed(3)
    negatives = torch.randint(0, len(table), (len(targets), 20))
    rows = [table[row] @ h for h, row in zip(hidden, negatives, strict=True)]
    negative_logits = torch.stack(rows).masked_fill(negatives == targets[:, None], float("-inf"))
    logits = torch.cat([(hidden * table[targets]).sum(-1, keepdim=True), negative_logits], 1)
    expected = F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long))
    torch.testing.assert_close(loss, expected)
    for got, want in zip(grads, torch.autograd.grad(expected, (hidden, table)), strict=True):
        torch.testing.assert_close(got, want)


def test_a_negative_equal_to_the_target_is_not_a_negative() -> None:
    """With one item every draw is the target: nothing competes, the loss is 0 (not log 2)."""
    hidden, table = torch.ones(3, 2), torch.ones(1, 2)
    loss = sampled_softmax_cross_entropy(hidden, table, torch.zeros(3, dtype=torch.long), 5)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)


def test_sampled_softmax_under_bf16_autocast_gives_an_fp32_loss_and_gradients() -> None:
    hidden, table, targets = _fp32_inputs()
    torch.manual_seed(0)
    expected = sampled_softmax_cross_entropy(hidden, table, targets, 30)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = sampled_softmax_cross_entropy(hidden, table, targets, 30)
    grads = torch.autograd.grad(loss, (hidden, table))
    assert loss.dtype == torch.float32 and all(grad.dtype == torch.float32 for grad in grads)
    torch.testing.assert_close(loss, expected, rtol=2e-2, atol=2e-2)
