"""Full-softmax cross-entropy over an item (or token) table, fused to save memory passes; and
its sampled form (the target against N uniform negatives).

`hidden @ table.T` logits are (N, V) with V the whole catalogue; the plain
`F.cross_entropy(hidden @ table.T, targets)` keeps a log-softmax copy and materialises a zero
(N, V) gradient for the NLL. Here the backward turns the saved logits into softmax - one-hot in
place: the same values and gradients, fewer passes over the largest tensor of the step.
Because of that, the graph may be back-propagated once only (no `retain_graph`). Under mixed
precision (`train.precision`) it declares its autocast behaviour (`torch.amp.custom_fwd/bwd`).
"""

from __future__ import annotations

import torch


def _fused_cross_entropy(device_type: str) -> type[torch.autograd.Function]:
    """The fused autograd function for tensors on `device_type`.

    `torch.amp.custom_fwd/custom_bwd` read the autocast state of one device type, fixed when
    the function is defined: hence one class per device type. Without autocast they do nothing.
    """

    class FullSoftmaxCrossEntropy(torch.autograd.Function):
        @staticmethod
        @torch.amp.custom_fwd(device_type=device_type)
        def forward(ctx, hidden: torch.Tensor, table: torch.Tensor, targets: torch.Tensor):
            # choice: under autocast the (N, V) product, the step's largest, runs in the autocast
            # dtype; the normaliser and the saved logits are at least fp32 (a bf16 log-sum-exp
            # over 10^4+ items loses the loss' digits), as transformers' LM losses upcast logits.
            logits = hidden @ table.T  # (N, V)
            logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
            log_normaliser = torch.logsumexp(logits, dim=1)  # (N,)
            target_logits = logits.gather(1, targets[:, None]).squeeze(1)
            ctx.save_for_backward(hidden, table, targets, logits, log_normaliser)
            return (log_normaliser - target_logits).mean()

        @staticmethod
        @torch.amp.custom_bwd(device_type=device_type)
        def backward(ctx, grad_output: torch.Tensor):
            # Runs under the forward's autocast state, so the two products run in its dtype
            # (without autocast, in the inputs' own); autograd casts each gradient to its input's
            # dtype, fp32 for fp32 master weights.
            hidden, table, targets, logits, log_normaliser = ctx.saved_tensors
            probabilities = logits.sub_(log_normaliser[:, None]).exp_()  # in place: logits spent
            probabilities[torch.arange(len(targets), device=targets.device), targets] -= 1.0
            probabilities.mul_(grad_output / len(targets))
            probabilities = probabilities.to(table.dtype)  # bf16 weights without autocast
            return probabilities @ table, probabilities.T @ hidden, None

    return FullSoftmaxCrossEntropy


def _device_types() -> list[str]:
    """The CPU and the accelerator this torch build was compiled for (CUDA, ...), if any."""
    accelerator = torch.accelerator.current_accelerator()  # build information: no device query
    return ["cpu"] if accelerator is None else ["cpu", accelerator.type]


# Defined once, not through a cache: torch.compile traces a plain dict lookup.
_FUSED = {device_type: _fused_cross_entropy(device_type) for device_type in _device_types()}


def full_softmax_cross_entropy(
    hidden: torch.Tensor, table: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean over rows of -log softmax(hidden @ table.T)[target]; hidden (N, H), table (V, H)."""
    if len(targets) == 0:
        return hidden.sum() * 0.0 + table.sum() * 0.0
    if hidden.device.type not in _FUSED:
        raise ValueError(f"no fused cross-entropy for {hidden.device.type!r} tensors")
    return _FUSED[hidden.device.type].apply(hidden, table, targets)


def sampled_softmax_cross_entropy(
    hidden: torch.Tensor, table: torch.Tensor, targets: torch.Tensor, num_negatives: int
) -> torch.Tensor:
    """Mean over rows of -log softmax([h.e_target, h.e_1, ..., h.e_N])[0]: each row's target
    against its own N negatives drawn uniformly from the table (with replacement, from torch's
    generator of the tensors' device, so a resumed run draws the same); a negative equal to the
    row's target is masked out (an accidental hit, not a negative). hidden (R, H), table (V, H).
    """
    if len(targets) == 0:
        return hidden.sum() * 0.0 + table.sum() * 0.0
    negatives = torch.randint(0, len(table), (len(targets), num_negatives), device=table.device)
    candidates = torch.cat([targets[:, None], negatives], dim=1)  # (R, 1 + N)
    logits = torch.einsum("rh,rch->rc", hidden, table[candidates])
    # A bf16 log-sum-exp loses the loss' digits (as in the full softmax above): fp32 from here.
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    hits = torch.cat(
        [torch.zeros_like(targets[:, None], dtype=torch.bool), negatives == targets[:, None]], 1
    )
    logits = logits.masked_fill(hits, float("-inf"))
    zeros = torch.zeros(len(targets), dtype=torch.long, device=targets.device)
    return torch.nn.functional.cross_entropy(logits, zeros)


def multinomial_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """−(1/B) Σ_b Σ_j t_bj log softmax(logits_b)_j, the multinomial likelihood of Mult-VAE (its
    eq. 4) and CLLM4Rec's item head; logits, targets (B, J). Not normalised by |t_b|."""
    return -(torch.log_softmax(logits.float(), dim=-1) * targets).sum(-1).mean()
