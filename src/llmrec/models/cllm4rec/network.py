"""The CLLM4Rec network: a frozen decoder read through ID-aware input embeddings, and its losses.

One forward pass over [prompt; main] per document (not the official two-pass KV cache, notes
sec. 2.3). Heads are restricted: item logits are H · V_viewᵀ through the view's own item table
(tied, no bias), vocabulary logits are H · W_lmᵀ over the N base rows only (frozen).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llmrec.models.cllm4rec.config import CLLM4RecConfig
from llmrec.models.cllm4rec.vocab import VIEWS, IdEmbedding, IdVocabulary, View
from llmrec.models.losses import multinomial_nll
from llmrec.training.batching import scatter_counts
from llmrec.training.protocol import LossOutput, TrainableNetwork, TrainingPlan

# The view each task trains; mutual regularisation pulls it toward the other (held fixed).
TASK_VIEW: dict[str, View] = {
    "collaborative": "collaborative",
    "recommend": "collaborative",
    "content": "content",
}


class CLLM4RecNetwork(TrainableNetwork):
    """Backbone (frozen unless LoRA) + the four ID tables; `forward(batch)` is one task's loss."""

    def __init__(
        self, language_model: nn.Module, vocabulary: IdVocabulary, config: CLLM4RecConfig
    ) -> None:
        super().__init__()
        language_model.requires_grad_(False)
        self.language_model = language_model
        self.ids = IdEmbedding(language_model.get_input_embeddings(), vocabulary, config.init_std)
        self.config = config
        weight = self.ids.item_weight("collaborative")
        if config.extensions.centered_head:  # beyond the paper (config.extensions.centered_head)
            self.state_mean = nn.Parameter(weight.new_zeros(weight.shape[1]))
            self.item_bias = nn.Parameter(weight.new_zeros(weight.shape[0]))
        if config.extensions.untied_head:  # beyond the paper (config.extensions.untied_head)
            self.head_items = nn.Parameter(torch.zeros_like(weight))

    def head_parameters(self) -> dict[str, nn.Parameter]:
        """The recommendation head's own tensors beyond the ID tables (centred / untied head)."""
        names = ("state_mean", "item_bias", "head_items")
        return {name: getattr(self, name) for name in names if hasattr(self, name)}

    def training_plan(self) -> TrainingPlan:
        """Checkpoints hold the ID tables (and adapters), not the frozen LLM; a step trains one
        view's tables (DDP: unused parameters); the tables may train at `table_lr_scale`."""
        return TrainingPlan(
            lr_scales=self._table_lr_scales(),
            checkpoint_trainable_only=True,
            unused_parameters=True,
        )

    def _table_lr_scales(self) -> dict[str, float]:
        scale = self.config.extensions.table_lr_scale
        if scale == 1.0:
            return {}
        tables = self.ids.named_parameters(prefix="ids")
        return {name: scale for name, parameter in tables if parameter.requires_grad}

    @property
    def vocabulary(self) -> IdVocabulary:
        return self.ids.vocabulary

    def hidden_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, view: View
    ) -> torch.Tensor:
        """(B, T, H) last hidden states (after the final norm) of ids read through `view`."""
        decoder = self.language_model.get_decoder()
        embeddings = self.ids(input_ids, view)
        return decoder(inputs_embeds=embeddings, attention_mask=attention_mask).last_hidden_state

    def item_logits(
        self, hidden: torch.Tensor, view: View = "collaborative", rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(..., J) scores of every item: the tied item head of `view`, or the given item rows
        (times the configured fixed scale)."""
        logits = hidden @ (self.ids.item_weight(view) if rows is None else rows).T
        scale = self.config.extensions.item_logit_scale
        return logits if scale == 1.0 else logits * scale

    def recommend_logits(self, prompt_states: torch.Tensor) -> torch.Tensor:
        """(B, J) recommendation scores of prompt states (`read_prompt`): the tied item head
        (or with `untied_head` the head's own rows); with `centered_head` that head on the
        centred states plus an item bias."""
        rows = self.head_items if self.config.extensions.untied_head else None
        if not self.config.extensions.centered_head:
            return self.item_logits(prompt_states, rows=rows)
        return self.item_logits(prompt_states - self.state_mean, rows=rows) + self.item_bias

    def prompt_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, H) collaborative-view states of recommendation prompts (`read_prompt`)."""
        hidden = self.hidden_states(input_ids, attention_mask, "collaborative")
        return self.read_prompt(hidden, input_ids, attention_mask)

    def read_prompt(
        self, hidden: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """(B, H) what the item head reads of each prompt's (B, T, H) states: the last real
        token's, or with `prompt_readout: items_mean` the mean over its item tokens."""
        last = attention_mask.sum(1) - 1
        states = hidden[torch.arange(len(last), device=last.device), last]
        if self.config.extensions.prompt_readout == "last":
            return states
        items = (input_ids >= self.vocabulary.item_range.start) & attention_mask.bool()
        counts = items.sum(1, keepdim=True)
        pooled = (hidden * items.unsqueeze(-1)).sum(1) / counts.clamp(min=1)
        return torch.where(counts > 0, pooled, states)

    def vocabulary_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., N) scores over the base vocabulary only: ID tokens can never be written."""
        return self.language_model.get_output_embeddings()(hidden)

    def rank_scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, J) item scores at the last real token of recommendation prompts."""
        return self.recommend_logits(self.prompt_states(input_ids, attention_mask))

    def forward(self, batch: dict) -> LossOutput:
        task = batch["task"]
        view = TASK_VIEW[task]
        hidden = self.hidden_states(batch["input_ids"], batch["attention_mask"], view)
        target_counts = None
        if task == "recommend":  # the targets travel as indices: dense only here, on the device
            target_counts = scatter_counts(batch["target_indices"], self.vocabulary.num_items)
            states = self.read_prompt(hidden, batch["input_ids"], batch["attention_mask"])
            main = multinomial_nll(self.recommend_logits(states), target_counts)  # (B, J) counts
            terms = len(states)
        else:
            positions = batch["next_targets"] >= 0
            targets = batch["next_targets"][positions]
            chosen = hidden[positions]
            if task == "collaborative":
                logits = self.item_logits(chosen, view)
                targets = targets - self.vocabulary.item_range.start
            else:
                logits = self.vocabulary_logits(chosen)
            main = F.cross_entropy(logits.float(), targets) if len(targets) else hidden.sum() * 0
            terms = len(targets)
        parts = {task: main.detach()}
        total = main
        if self.config.mr_lambda > 0 and batch.get("mutual", True):
            extra = target_counts if self.config.mr_include_targets else None
            mr = self.mutual_regularisation(batch["input_ids"], batch["mr_mask"], view, extra)
            parts["mr"] = mr.detach()
            total = main + self.config.mr_lambda * mr
        tokens = int(batch["attention_mask"].sum())
        return LossOutput(total, parts, tokens, num_terms=terms)

    def mutual_regularisation(
        self,
        input_ids: torch.Tensor,
        mask: torch.Tensor,
        view: View,
        target_counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Σ ‖e_view(x) − sg(e_other(x))‖² over the masked ID occurrences (and, if given, the
        target items weighted by their counts); `mean` mode divides by the occurrences."""
        other = VIEWS[1 - VIEWS.index(view)]
        ids = input_ids[mask]
        own = self.ids(ids[None], view)[0]
        with torch.no_grad():
            fixed = self.ids(ids[None], other)[0]
        total = ((own - fixed) ** 2).sum()
        occurrences = float(len(ids))
        if target_counts is not None:
            gap = self.ids.item_weight(view) - self.ids.item_weight(other).detach()
            weights = target_counts.sum(0)  # (J,) occurrences of each target item in the batch
            total = total + (weights[:, None] * gap**2).sum()
            occurrences += float(weights.sum())
        if self.config.extensions.mr_mode == "mean":
            return total / max(occurrences, 1.0)
        return total
