"""Full-softmax cross-entropy over an item (or token) table, fused to save memory passes.

`hidden @ table.T` logits are (N, V) with V the whole catalogue; the plain
`F.cross_entropy(hidden @ table.T, targets)` keeps a log-softmax copy and materialises a zero
(N, V) gradient for the NLL. Here the backward turns the saved logits into softmax - one-hot in
place: the same values and gradients, fewer passes over the largest tensor of the step.
Because of that, the graph may be back-propagated once only (no `retain_graph`).
"""

from __future__ import annotations

import torch


class _FullSoftmaxCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, table: torch.Tensor, targets: torch.Tensor):
        logits = hidden @ table.T  # (N, V)
        log_normaliser = torch.logsumexp(logits, dim=1)  # (N,)
        target_logits = logits.gather(1, targets[:, None]).squeeze(1)
        ctx.save_for_backward(hidden, table, targets, logits, log_normaliser)
        return (log_normaliser - target_logits).mean()

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        hidden, table, targets, logits, log_normaliser = ctx.saved_tensors
        probabilities = logits.sub_(log_normaliser[:, None]).exp_()  # in place: logits are spent
        probabilities[torch.arange(len(targets), device=targets.device), targets] -= 1.0
        probabilities.mul_(grad_output / len(targets))
        return probabilities @ table, probabilities.T @ hidden, None


def full_softmax_cross_entropy(
    hidden: torch.Tensor, table: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean over rows of -log softmax(hidden @ table.T)[target]; hidden (N, H), table (V, H)."""
    if len(targets) == 0:
        return hidden.sum() * 0.0 + table.sum() * 0.0
    return _FullSoftmaxCrossEntropy.apply(hidden, table, targets)


def multinomial_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """−(1/B) Σ_b Σ_j t_bj log softmax(logits_b)_j, the multinomial likelihood of Mult-VAE (its
    eq. 4) and CLLM4Rec's item head; logits, targets (B, J). Not normalised by |t_b|."""
    return -(torch.log_softmax(logits.float(), dim=-1) * targets).sum(-1).mean()
