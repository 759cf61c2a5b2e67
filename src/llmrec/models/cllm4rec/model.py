"""CLLM4Rec (Zhu et al., WWW 2024): user and item ID tokens read by a frozen LLM, learned by a
collaborative and a content language model tied by mutual regularisation, then finetuned with an
item head (multinomial likelihood) that scores the whole catalogue in one forward pass.

Schedule (notes sec. 3.3, 4): content warm-up; rounds of {collaborative epoch, content epoch};
finetuning epochs of {recommendation epoch, content epoch}, the best epoch chosen on validation.
Every phase runs on the shared Accelerate loop. The saved model is the four ID tables, the user
ids, the config and the backbone's identity (the frozen LLM is reloaded from its source and its
hash checked), all safetensors / JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from llmrec.data.catalogue import Catalogue
from llmrec.data.sequences import EvalSet
from llmrec.errors import ConfigError, ModelFormatError
from llmrec.models.backbone import BackboneConfig, add_lora, load_backbone, merge_lora
from llmrec.models.base import FitResult, RecommenderModel, RunContext, module_device
from llmrec.models.cllm4rec.config import CLLM4RecConfig, CLLM4RecLiteConfig
from llmrec.models.cllm4rec.documents import Document, DocumentBatches, Task, Templates, collate
from llmrec.models.cllm4rec.network import CLLM4RecNetwork
from llmrec.models.cllm4rec.vocab import VIEWS, IdVocabulary
from llmrec.models.saved import read_json, read_tensors, tensor_shapes
from llmrec.models.stages import train_stage
from llmrec.recommendations import Histories, Users
from llmrec.training.config import TrainConfig

TABLES_FILE = "id_tables.safetensors"
USERS_FILE = "users.json"
IDENTITY_FILE = "backbone_identity.json"
BACKBONE_FOLDER = "backbone"  # only with LoRA: the merged backbone differs from its source
HEAD_PREFIX = "head."  # the head's own tensors in TABLES_FILE (centered_head, untied_head)
CENTERING_USERS = 1024  # training prompts whose mean state starts the centred head


@dataclass(frozen=True)
class Stage:
    """One run of the shared loop: the tasks of each of its epochs, in order."""

    name: str
    phases: tuple[Task, ...]
    train: TrainConfig
    mutual: bool = True  # mutual regularisation on (off in the content warm-up)
    validated: bool = True  # validate each epoch and keep the best (ours in pretraining)


class CLLM4Rec(RecommenderModel):
    name = "cllm4rec"
    Config = CLLM4RecConfig
    reads_users = True  # user ID tokens

    def __init__(self, config: CLLM4RecConfig, catalogue: Catalogue) -> None:
        super().__init__(config, catalogue)
        self._network: CLLM4RecNetwork | None = None
        self.user_index: dict[str, int] = {}
        self.backbone_identity: dict = {}

    def _build(
        self, user_ids: Sequence[str], backbone: BackboneConfig, show_progress: bool = True
    ) -> None:
        """Load the backbone and make fresh ID tables for these users (+ one anonymous user)."""
        loaded = load_backbone(backbone, show_progress=show_progress)
        self.backbone_identity = loaded.identity
        self.user_index = {str(user): index for index, user in enumerate(user_ids)}
        if len(self.user_index) != len(user_ids):
            raise ValueError("user ids must be distinct")
        # ID tokens start after the embedding table, which may hold more rows than the tokenizer
        # has tokens (padded for speed, e.g. Qwen2.5, Pythia): no text maps to those rows; the
        # content LM's head keeps them, as the backbone's own pretraining did.
        base_rows = loaded.model.get_input_embeddings().num_embeddings
        if base_rows < len(loaded.tokenizer):
            raise ConfigError(
                f"backbone {backbone.source}: its tokenizer has {len(loaded.tokenizer)} tokens "
                f"but its embedding table only {base_rows} rows"
            )
        # choice: the last user row stands for users the model never saw (the mean user).
        vocabulary = IdVocabulary(base_rows, len(user_ids) + 1, self.num_items)
        self._network = CLLM4RecNetwork(loaded.model, vocabulary, self.config)
        self.templates = Templates(loaded.tokenizer, vocabulary, self.config)

    @property
    def network(self) -> CLLM4RecNetwork:
        if self._network is None:
            raise RuntimeError("CLLM4Rec has no ID tables yet: fit or load it first")
        return self._network

    @property
    def anonymous_user(self) -> int:
        return len(self.user_index)

    # --- training ---------------------------------------------------------------------------
    def _fit(
        self,
        train_sequences: Sequence[np.ndarray],
        valid: EvalSet | None,
        run: RunContext,
        user_ids: Sequence[str] | None,
    ) -> FitResult:
        if user_ids is None:  # choice: anonymous data: users are named by their position
            user_ids = [str(position) for position in range(len(train_sequences))]
        if len(user_ids) != len(train_sequences):
            raise ValueError(f"{len(user_ids)} user ids for {len(train_sequences)} sequences")
        torch.manual_seed(run.seed)
        self._build(user_ids, self.config.backbone, run.show_progress)
        extensions = self.config.extensions
        if extensions.lora is not None:
            self.network.language_model = add_lora(self.network.language_model, extensions.lora)
        content = self.templates.item_documents(self.catalogue.items)
        if extensions.item_init == "content":  # beyond the paper
            self.network.ids.start_items_from_text(self.templates.item_text_tokens(content))
        if self.config.extensions.user_content_documents:
            content += self.templates.user_documents(train_sequences, self.catalogue.items)
        history, stage_seconds, result = [], {}, None
        for stage in self._stages(run.train):
            if stage.name == "finetune" and self.config.extensions.centered_head:
                self._start_centered_head(train_sequences, run.seed)
            batches = DocumentBatches(
                stage.phases,
                self.templates,
                train_sequences,
                content,
                stage.train.batch_size,
                run.seed,
                mutual=stage.mutual,
            )
            result = train_stage(
                self, stage.name, batches, stage.train, valid if stage.validated else None, run
            )
            history += [{**entry, "stage": stage.name} for entry in result.history]
            stage_seconds[stage.name] = result.train_seconds
        self.network.language_model = merge_lora(self.network.language_model)
        self.network.eval()
        self._set_anonymous_user()
        return FitResult.from_train(
            result,
            history=history,
            train_seconds=sum(stage_seconds.values()),
            stage_seconds=stage_seconds,
        )

    def _stages(self, finetune: TrainConfig) -> list[Stage]:
        """Content warm-up (no MR, nothing to validate yet), pretraining rounds, finetuning."""
        pretrain = self.config.pretrain
        stages = []
        if pretrain.warmup_epochs:
            cfg = pretrain.train.model_copy(update={"epochs": pretrain.warmup_epochs})
            stages.append(Stage("warmup", ("content",), cfg, mutual=False, validated=False))
        if pretrain.rounds:
            cfg = pretrain.train.model_copy(update={"epochs": pretrain.rounds})
            stages.append(Stage("pretrain", ("collaborative", "content"), cfg))
        content = ("content",) if self.config.finetune_content_epochs else ()
        stages.append(Stage("finetune", ("recommend", *content), finetune))
        return stages

    def _start_centered_head(self, train_sequences: Sequence[np.ndarray], seed: int) -> None:
        """Start the centred head as popularity: the mean state of a seeded sample of training
        prompts, and item biases log(1 + training count), which the head's small item rows
        barely change at first. (A resumed run then loads its checkpointed values over these.)"""
        users = [user for user, items in enumerate(train_sequences) if len(items)]
        size = min(len(users), CENTERING_USERS)
        chosen = sorted(np.random.default_rng(seed).choice(users, size=size, replace=False))
        templates = self.templates
        documents = [
            templates.recommendation(int(user), templates.recent(train_sequences[user]))
            for user in chosen
        ]
        network = self.network.eval()  # the loop sets train mode again when it starts
        with torch.no_grad():
            batches = self._prompt_batches(documents)
            states = torch.cat([network.prompt_states(*batch).float() for batch in batches])
            network.state_mean.copy_(states.mean(0))
            counts = np.bincount(np.concatenate(train_sequences), minlength=self.num_items)
            network.item_bias.copy_(torch.log1p(torch.as_tensor(counts)))

    def _set_anonymous_user(self) -> None:
        """The anonymous user's rows: the mean of the trained users' rows, in both views."""
        with torch.no_grad():
            for view in VIEWS:
                table = self.network.ids.user_weight(view)
                table[self.anonymous_user] = table[: self.anonymous_user].mean(0)

    # --- ranking ----------------------------------------------------------------------------
    def score(self, histories: Histories, users: Users = None) -> torch.Tensor:
        """(B, J) item-head scores of `user_i has interacted with <history>, user_i will interact
        with`; history order as given (choice: no shuffle at inference, so scores are
        deterministic; training permutes), the most recent `max_history_items` kept."""
        users = list(users) if users is not None else [None] * len(histories)
        if len(users) != len(histories):
            raise ValueError(f"{len(users)} users for {len(histories)} histories")
        documents = [
            self.templates.recommendation(
                self.user_index.get(str(user), self.anonymous_user)
                if user is not None
                else self.anonymous_user,
                self.templates.recent(history),
            )
            for user, history in zip(users, histories, strict=True)
        ]
        network = self.network.eval()
        with torch.no_grad():
            batches = self._prompt_batches(documents)
            parts = [network.rank_scores(*batch).float().cpu() for batch in batches]
        return torch.cat(parts) if parts else torch.zeros(0, self.num_items)

    def _prompt_batches(self, documents: Sequence[Document]):
        """(input_ids, attention_mask) of recommendation prompts, `score_batch_size` at a time,
        on the network's device."""
        network, size = self.network, self.config.score_batch_size
        device = module_device(network)
        for start in range(0, len(documents), size):
            batch = collate(
                "recommend", documents[start : start + size], network.vocabulary, self.config
            )
            yield batch["input_ids"].to(device), batch["attention_mask"].to(device)

    # --- persistence ------------------------------------------------------------------------
    def _tables(self) -> dict[str, torch.Tensor]:
        """What TABLES_FILE holds: each view's user and item table and the head's own tensors
        (the live parameters: loading copies into them)."""
        network = self.network
        tables = {
            f"{kind}.{view}": getattr(network.ids, kind)[view].weight
            for kind in ("users", "items")
            for view in VIEWS
        }
        for name, parameter in network.head_parameters().items():
            tables[HEAD_PREFIX + name] = parameter
        return tables

    def _save_state(self, path: Path) -> None:
        tables = {key: tensor.detach().contiguous() for key, tensor in self._tables().items()}
        save_file(tables, str(path / TABLES_FILE))
        users = json.dumps(list(self.user_index)) + "\n"
        (path / USERS_FILE).write_text(users, encoding="utf-8")
        identity = json.dumps(self.backbone_identity, indent=1) + "\n"
        (path / IDENTITY_FILE).write_text(identity, encoding="utf-8")
        if self.config.extensions.lora is not None:
            self.network.language_model.save_pretrained(path / BACKBONE_FOLDER)
            self.templates.tokenizer.save_pretrained(path / BACKBONE_FOLDER)

    def _load_state(self, path: Path) -> None:
        saved_identity = read_json(path / IDENTITY_FILE, dict)
        users = _saved_users(path)
        backbone = self.config.backbone
        if self.config.extensions.lora is not None:
            backbone = BackboneConfig(source=str(path / BACKBONE_FOLDER))
        self._build(users, backbone, show_progress=False)
        if self.config.extensions.lora is None:
            _check_identity(saved_identity, self.backbone_identity, path)
        self.backbone_identity = saved_identity
        expected = self._tables()
        saved = read_tensors(path / TABLES_FILE, expected)
        with torch.no_grad():
            for key, tensor in saved.items():
                expected[key].copy_(tensor)


def _saved_users(path: Path) -> list[str]:
    """The user ids of USERS_FILE, checked against the user tables' rows (one more: the
    anonymous user) from the header of TABLES_FILE, before the tables are allocated."""
    users = read_json(path / USERS_FILE, list)
    if not all(isinstance(user, str) for user in users) or len(set(users)) != len(users):
        raise ModelFormatError("expected an array of distinct user id strings", path / USERS_FILE)
    rows = tensor_shapes(path / TABLES_FILE).get(f"users.{VIEWS[0]}", (None,))[0]
    if rows != len(users) + 1:
        raise ModelFormatError(
            f"lists {len(users)} users, but the user tables of {TABLES_FILE} hold {rows} rows "
            "(users + 1 anonymous)",
            path / USERS_FILE,
        )
    return users


def _check_identity(saved: dict, loaded: dict, path: Path) -> None:
    """The frozen backbone must be the one the ID tables were learned with."""
    for key in ("sha256", "kept_layers"):
        if saved.get(key) != loaded.get(key):
            raise ModelFormatError(
                f"{path / IDENTITY_FILE}: the backbone's {key} was {saved.get(key)!r} when the "
                f"model was trained but is {loaded.get(key)!r} now (backbone {loaded['source']})"
            )


class CLLM4RecLite(CLLM4Rec):
    """CLLM4Rec-lite (beyond the paper, `CLLM4RecLiteConfig`): CLLM4Rec's finetuning with the
    item head alone, on anonymous prompts unless the config names users by token."""

    name = "cllm4rec-lite"
    Config = CLLM4RecLiteConfig

    @property
    def reads_users(self) -> bool:  # type: ignore[override]
        """Only prompts that name the user by ID token read who a history belongs to."""
        return self.config.extensions.prompt_user_token
