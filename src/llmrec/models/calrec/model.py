"""CALRec (Li et al., RecSys 2024): a decoder LLM finetuned to write the next item's text, with two
contrastive alignments (two towers, shared weights), in two stages; generations are grounded to
catalogue items with BM25 and merged quasi-round-robin.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from llmrec.data.catalogue import Catalogue
from llmrec.data.sequences import EvalSet
from llmrec.errors import ConfigError
from llmrec.models.backbone import (
    BackboneConfig,
    add_lora,
    load_backbone,
    merge_lora,
    train_top_layers,
)
from llmrec.models.base import FitResult, RecommenderModel, RunContext, module_device
from llmrec.models.calrec.batches import (
    ExampleBatches,
    build_examples,
)
from llmrec.models.calrec.config import CALRecConfig, StageOneConfig  # noqa: F401 (re-export)
from llmrec.models.calrec.constrained import constrained_ranking
from llmrec.models.calrec.generate import GenerationConfig, stop_token_ids
from llmrec.models.calrec.losses import (
    ContrastiveInputs,
    combine,
    example_inputs,
    info_nce,
    mean_pool,
    next_item_generation_loss,
)
from llmrec.models.calrec.packing import (
    PackedBatches,
    build_packed,
    packed_inputs,
)
from llmrec.models.calrec.ranking import (
    GroundingStats,
    HistoryList,
    generation_rankings,
    to_recommendations,
)
from llmrec.models.calrec.vllm_backend import Sampler, make_sampler
from llmrec.models.saved import read_json, read_tensors, require
from llmrec.models.stages import train_stage
from llmrec.recommendations import Exclusions, Histories, Recommendations, Users, top_k
from llmrec.retrieval.bm25 import BM25Index
from llmrec.retrieval.constrained import CatalogueTrie
from llmrec.retrieval.dense import VECTORS_FILE, DenseIndex, reciprocal_rank_fusion
from llmrec.text.templates import ItemLines
from llmrec.training.protocol import LossOutput, TrainableNetwork

BACKBONE_FOLDER = "backbone"
BM25_FOLDER = "bm25"
DENSE_FOLDER = "dense"


class CALRecNetwork(TrainableNetwork):
    """The causal LM and the loss of one batch: joint pass (history + target), item pass."""

    def __init__(self, language_model: nn.Module, config: CALRecConfig, pad_id: int = 0) -> None:
        super().__init__()
        self.language_model = language_model
        self.alpha, self.beta, self.temperature = config.alpha, config.beta, config.temperature
        self.pad_id = pad_id

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        decoder = self.language_model.get_decoder()
        return decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        joint = self.hidden_states(batch["input_ids"], batch["attention_mask"])  # (B, T, H)
        head = self.language_model.get_output_embeddings()
        parts = {
            "nig": next_item_generation_loss(joint, head, batch["input_ids"], batch["label_mask"])
        }
        tokens = int(batch["attention_mask"].sum())
        if self.alpha > 0 or self.beta > 0:
            towers = self.contrastive_inputs(joint, batch)
            alone = mean_pool(
                self.hidden_states(towers.item_ids, towers.item_mask), towers.item_mask
            )[towers.inverse]  # v_T of each anchor's target, the item tower run once per item
            tokens += int(towers.item_mask.sum())
            if self.alpha > 0:
                parts["tt"] = info_nce(towers.in_context, alone, towers.keys, self.temperature)
            if self.beta > 0:
                parts["ut"] = info_nce(towers.user, alone, towers.keys, self.temperature)
        total = combine(parts["nig"], parts.get("tt"), parts.get("ut"), self.alpha, self.beta)
        # Exact under DDP for the token loss (NIG); InfoNCE negatives stay per process.
        generated = int(batch["label_mask"][:, 1:].sum())
        detached = {k: v.detach() for k, v in parts.items()}
        return LossOutput(total, detached, tokens, num_terms=generated)

    def contrastive_inputs(
        self, joint: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> ContrastiveInputs:
        """The anchors (v_U, v_T|U) of every training target and the item tower's input: one
        example per row, or every line of a packed row (`packing.py`)."""
        if "is_target" in batch:
            return packed_inputs(joint, batch, self.pad_id)
        return example_inputs(joint, batch)


class CALRec(RecommenderModel):
    name = "calrec"
    Config = CALRecConfig

    def __init__(self, config: CALRecConfig, catalogue: Catalogue) -> None:
        super().__init__(config, catalogue)
        self._network: CALRecNetwork | None = None
        self._lines: ItemLines | None = None
        self._index: BM25Index | None = None
        self._dense: DenseIndex | None = None
        self._trie: CatalogueTrie | None = None
        self.backbone_identity: dict = {}
        self._sampler: tuple[GenerationConfig, Sampler] | None = None
        self._saved_folder: Path | None = None
        self._temporary_folder: tempfile.TemporaryDirectory | None = None

    # --- lazy state: the backbone is loaded on first use, from the config or a saved folder ---
    def _attach(self, backbone_config: BackboneConfig, show_progress: bool = True) -> None:
        backbone = load_backbone(backbone_config, show_progress=show_progress)
        self._tokenizer = backbone.tokenizer
        self.backbone_identity = self.backbone_identity or backbone.identity
        self._network = CALRecNetwork(backbone.model, self.config, self._tokenizer.pad_token_id)
        self._lines = ItemLines(self.catalogue.items, self._tokenizer, self.config.text)
        self._stop_ids = stop_token_ids(self._tokenizer)  # newline and special tokens end a line

    @property
    def network(self) -> CALRecNetwork:
        if self._network is None:
            self._attach(self.config.backbone)
        return self._network

    @property
    def tokenizer(self):
        _ = self.network
        return self._tokenizer

    @property
    def lines(self) -> ItemLines:
        _ = self.network
        return self._lines

    @property
    def index(self) -> BM25Index:
        if self._index is None:
            self._index = BM25Index.build(self.lines.texts, self.config.bm25_k1, self.config.bm25_b)
        return self._index

    @property
    def trie(self) -> CatalogueTrie:
        """Prefix trie of every item line (+ newline), for constrained decoding."""
        if self._trie is None:
            self._trie = CatalogueTrie(self.lines.ids, self.lines.newline)
        return self._trie

    @property
    def sampler(self) -> Sampler:
        """G lines per prompt by `generation.backend` (vLLM built once, on first use)."""
        generation = self.config.generation
        if self._sampler is None or self._sampler[0] != generation:
            sampler = make_sampler(
                self.network.language_model,
                self.tokenizer,
                generation,
                self._stop_ids,
                self._model_folder,
            )
            self._sampler = (generation, sampler)
        return self._sampler[1]

    def _model_folder(self) -> Path:
        """A saved copy of the language model (for vLLM): the loaded folder, or a fresh one."""
        if self._saved_folder is None:
            # removed when the model is garbage-collected or the interpreter exits
            self._temporary_folder = tempfile.TemporaryDirectory(prefix="llmrec-calrec-model-")
            folder = Path(self._temporary_folder.name)
            self.network.language_model.save_pretrained(folder)
            self.tokenizer.save_pretrained(folder)
            self._saved_folder = folder
        return self._saved_folder

    @property
    def dense(self) -> DenseIndex:
        """Item vectors v_T (item tower over every catalogue line), computed once after fitting."""
        if self._dense is None:
            self._dense = DenseIndex(self._encode([list(ids) for ids in self.lines.ids]))
        return self._dense

    def _encode(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """(N, H) mean-pooled last hidden states of token sequences (padded per batch)."""
        network, pad = self.network.eval(), self.tokenizer.pad_token_id
        device, vectors = module_device(network), []
        with torch.no_grad():
            for start in range(0, len(sequences), self.config.encode_batch_size):
                chunk = sequences[start : start + self.config.encode_batch_size]
                width = max(len(ids) for ids in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.bool)
                for row, tokens in enumerate(chunk):
                    ids[row, : len(tokens)] = torch.tensor(tokens)
                    mask[row, : len(tokens)] = True
                hidden = network.hidden_states(ids.to(device), mask.to(device))
                vectors.append(mean_pool(hidden, mask.to(device)).float().cpu())
        return torch.cat(vectors) if vectors else torch.zeros(0, 1)

    # --- training ---------------------------------------------------------------------------
    def _fit(
        self,
        train_sequences: Sequence[np.ndarray],
        valid: EvalSet | None,
        run: RunContext,
        user_ids: Sequence[str] | None,
    ) -> FitResult:
        torch.manual_seed(run.seed)
        extensions = self.config.extensions
        if extensions.lora is not None:  # choice: adapters train, then merge into the weights
            self.network.language_model = add_lora(self.network.language_model, extensions.lora)
        if extensions.trainable_layers is not None:
            train_top_layers(self.network.language_model, extensions.trainable_layers)
        history: list[dict[str, float]] = []
        stage_seconds: dict[str, float] = {}
        result = None
        if self.config.stage_one is not None:
            result = train_stage(
                self,
                "stage_one",
                self._stage_one_batches(train_sequences, run),
                self.config.stage_one.train,
                valid,
                run,
            )
            history += [{**h, "stage": 1} for h in result.history]
            stage_seconds["stage_one"] = result.train_seconds
        if self.config.stage_two:
            batches = self._batches(
                [self._training_pool(train_sequences, self.lines)], run.train.batch_size, run.seed
            )
            result = train_stage(self, "stage_two", batches, run.train, valid, run)
            history += [{**h, "stage": 2} for h in result.history]
            stage_seconds["stage_two"] = result.train_seconds
        self.network.language_model = merge_lora(self.network.language_model)
        self.network.eval()
        self._dense = None  # item vectors are stale after training
        self._sampler, self._saved_folder = None, None  # so is a vLLM engine's copy
        if result is None:
            return FitResult()
        return FitResult.from_train(result, history=history, stage_seconds=stage_seconds)

    def auxiliary_sources(self) -> dict[str, Path | None]:
        """Stage I's mixture: the named data sets, looked for in `stage_one.data_dir`."""
        stage = self.config.stage_one
        return {source: stage.data_dir for source in stage.sources} if stage else {}

    def _stage_one_batches(self, train_sequences, run: RunContext) -> ExampleBatches:
        stage = self.config.stage_one
        pools, users, offset = [], [], len(self.catalogue)
        for source in stage.sources:
            if source not in run.auxiliary:
                raise ConfigError(
                    f"Stage I mixes {source!r}: load it into RunContext.auxiliary "
                    "(llmrec.run_experiment does)"
                )
            dataset = run.auxiliary[source]
            lines = ItemLines(dataset.catalogue.items, self.tokenizer, self.config.text)
            pools.append(self._training_pool(dataset.train, lines, offset))
            users.append(dataset.num_users)
            offset += dataset.num_items
        if stage.include_target:
            pools.append(self._training_pool(train_sequences, self.lines))
            users.append(len(train_sequences))
        weights = [count**stage.exponent for count in users]
        return self._batches(
            pools, stage.train.batch_size, run.seed, weights, stage.examples_per_epoch
        )

    def _training_pool(
        self, sequences: Sequence[np.ndarray], lines: ItemLines, key_offset: int = 0
    ) -> list:
        """One data set's training examples, or its packed user sequences under packing."""
        packing = self.config.extensions.packing
        if packing is not None:
            return build_packed(sequences, lines, packing.token_budget, key_offset)
        return build_examples(sequences, lines, self.config.training_targets, key_offset)

    def _batches(
        self,
        pools: list[list],
        batch_size: int,
        seed: int,
        weights: list[float] | None = None,
        examples_per_epoch: int | None = None,
    ) -> ExampleBatches:
        """Batches of examples, or of users' packed sequences (one row per user)."""
        packing, pad_id = self.config.extensions.packing, self.tokenizer.pad_token_id
        if packing is None:
            return ExampleBatches(pools, batch_size, pad_id, seed, weights, examples_per_epoch)
        return PackedBatches(
            pools,
            batch_size,
            pad_id,
            seed,
            weights,
            examples_per_epoch,
            group_by_length=packing.group_by_length,
        )

    # --- ranking ----------------------------------------------------------------------------
    def recommend(
        self, histories: Histories, k: int, exclude: Exclusions = None, users: Users = None
    ) -> Recommendations:
        """Top-k by the configured retrieval (see `CALRecExtensions.retrieval`)."""
        if self.config.extensions.retrieval == "dense":
            return super().recommend(histories, k, exclude, users)
        self.network.eval()
        prompts = [self.lines.prompt_ids(history) for history in histories]
        if self.config.extensions.retrieval == "constrained":
            return constrained_ranking(
                self.network.language_model,
                prompts,
                self.trie,
                k,
                exclude,
                **self.config.extensions.constrained.model_dump(),
            )
        depth = (
            k
            if self.config.extensions.retrieval == "bm25"
            else max(k, self.config.extensions.hybrid_depth)
        )
        grounding = GroundingStats()
        rankings = generation_rankings(
            self.sampler,
            prompts,
            self.index,
            depth,
            exclude,
            self.lines.texts,
            grounding,
            self._history_list(histories),
        )
        if self.config.extensions.retrieval == "hybrid":
            dense = top_k(self.dense_scores(histories), depth, exclude)
            rankings = [
                # excluded items come back at -inf when too few others are left: not fused
                reciprocal_rank_fusion([generated, list(items[np.isfinite(scores)])], depth)
                for generated, items, scores in zip(
                    rankings, dense.item_indices, dense.scores, strict=True
                )
            ]
        # the grounding of this batch's generations comes back with its rankings
        recommendations = to_recommendations(rankings, k, self.num_items, exclude)
        return dataclasses.replace(recommendations, diagnostics=grounding)

    def _history_list(self, histories: Histories) -> HistoryList | None:
        """The history's own BM25 query (its prompt's lines, joined), when the extension is on."""
        position = self.config.extensions.history_list
        if position == "off":
            return None
        recent = self.config.text.max_history_items
        queries = [
            " ".join(self.lines.texts[int(item)] for item in list(history)[-recent:])
            for history in histories
        ]
        return HistoryList(queries, first=position == "first")

    def score(self, histories: Histories, users: Users = None) -> torch.Tensor | None:
        """Dense scores cos(v_U, v_T) for every item when retrieval is dense; else None (the
        generative rankings cover only the items the generations name)."""
        if self.config.extensions.retrieval != "dense":
            return None
        return self.dense_scores(histories)

    def dense_scores(self, histories: Histories) -> torch.Tensor:
        """(B, n) cosine similarity of the history vector v_U with every item vector v_T."""
        prompts = [self.lines.prompt_ids(history) for history in histories]
        return self.dense.scores(self._encode(prompts))

    # --- persistence ------------------------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        self.network.language_model.save_pretrained(path / BACKBONE_FOLDER)
        self.tokenizer.save_pretrained(path / BACKBONE_FOLDER)
        self.index.save(path / BM25_FOLDER)
        if self._dense is not None or self.config.extensions.retrieval in ("dense", "hybrid"):
            self.dense.save(path / DENSE_FOLDER)
        identity = json.dumps(self.backbone_identity, indent=1) + "\n"
        (path / "backbone_identity.json").write_text(identity, encoding="utf-8")

    def _load_state(self, path: Path) -> None:
        self.backbone_identity = read_json(path / "backbone_identity.json", dict)
        index = BM25Index.load(path / BM25_FOLDER, self.num_items)  # checked before the LLM loads
        backbone = require(path / BACKBONE_FOLDER)  # else it would read as a misspelt source
        self._attach(BackboneConfig(source=str(backbone)), show_progress=False)
        self._saved_folder = path / BACKBONE_FOLDER
        self._index = index
        if (path / DENSE_FOLDER).is_dir():
            hidden = self.network.language_model.config.hidden_size
            expected = {"item_vectors": torch.empty(self.num_items, hidden, device="meta")}
            vectors = read_tensors(path / DENSE_FOLDER / VECTORS_FILE, expected)
            self._dense = DenseIndex(vectors["item_vectors"])
