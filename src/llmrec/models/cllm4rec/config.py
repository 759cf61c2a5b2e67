"""CLLM4Rec's typed configuration: backbone, ID tables, documents, losses and the schedule.

Defaults follow the paper where it speaks and the official code where only it does (notes:
`docs/cllm4rec.md`, which lists every choice); the switches keep the other reading available.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_validator,
)

from llmrec.config_rules import CONFIG_RULES
from llmrec.models.backbone import BackboneConfig, LoraSettings
from llmrec.models.base import ModelConfig
from llmrec.training.config import TrainConfig, fill_defaults, refuse_unused

ContentField = Literal["title", "categories", "brand"]
MutualMode = Literal["sum", "mean"]
TargetSet = Literal["heldout", "all_train"]


# the official pretraining loop's settings, where they differ from TrainConfig's defaults
PRETRAIN_TRAIN = {"lr": 1e-3, "batch_size": 20, "grad_clip": None}


class PretrainConfig(BaseModel):
    """Pretraining: content warm-up epochs, then rounds of one collaborative + one content epoch."""

    model_config = CONFIG_RULES

    warmup_epochs: NonNegativeInt = Field(
        10, description="content-only epochs before the rounds (official 10), no MR"
    )
    rounds: NonNegativeInt = Field(
        100, description="rounds of {collaborative epoch, content epoch} (official 100)"
    )
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(**PRETRAIN_TRAIN),
        description="loop settings of both pretraining phases (official: Adam, lr 1e-3, "
        "batch 20 per process, no clipping: the defaults of keys left out); `epochs` must stay "
        "unset (warmup_epochs / rounds count)",
    )

    @field_validator("train", mode="before")
    @classmethod
    def _section_defaults(cls, value):
        return fill_defaults(value, PRETRAIN_TRAIN)

    @model_validator(mode="after")
    def _no_unused_train_settings(self) -> PretrainConfig:
        refuse_unused(
            self.train,
            "pretrain.train",
            {
                "epochs": "warmup_epochs and rounds count the pretraining epochs",
                "refit_before_test": "refitting before test is the run's train.refit_before_test",
            },
        )
        return self


class CLLM4RecExtensions(BaseModel):
    """Beyond the paper and the official code (docs/cllm4rec.md sec. 9): every default here is
    the published method, so an empty `extensions:` block is CLLM4Rec as published."""

    model_config = CONFIG_RULES

    lora: LoraSettings | None = Field(
        None,
        description="beyond the paper: also train low-rank adapters on the backbone (merged "
        "after fit); None keeps the backbone frozen, as the paper and official code do",
    )
    item_logit_scale: float = Field(
        1.0,
        gt=0.0,
        description="beyond the paper: multiply the item head's logits by this fixed factor "
        "(1 = the paper). Below 1 with `init_std: null` keeps ID tokens as loud as words to the "
        "LLM while the initial item logits stay near uniform (docs/cllm4rec.md sec. 9)",
    )
    centered_head: bool = Field(
        False,
        description="beyond the paper: the recommendation head scores (h - m) . V + b, with m "
        "a trainable mean prompt state and b a trainable item bias, started at finetuning as "
        "the mean state of training prompts and log(1 + training count): item rows then learn "
        "what differs between users, not popularity (docs/cllm4rec.md sec. 9). The "
        "collaborative LM keeps the tied head",
    )
    table_lr_scale: float = Field(
        1.0,
        gt=0.0,
        description="beyond the paper: the ID tables (users and items, both views) train at "
        "this multiple of train.lr (every stage), the head's own tensors at train.lr "
        "(docs/cllm4rec.md sec. 9)",
    )
    prompt_readout: Literal["last", "items_mean"] = Field(
        "last",
        description="which hidden states of a recommendation prompt the item head reads: the "
        "last token's (the paper), or beyond the paper the mean over the prompt's item tokens "
        "(the last token's where a prompt has none; docs/cllm4rec.md sec. 9)",
    )
    untied_head: bool = Field(
        False,
        description="beyond the paper: the recommendation head has item rows of its own, "
        "started at zero, instead of the collaborative item table the prompt reads (tied): input "
        "rows then need not double as output rows (docs/cllm4rec.md sec. 9). The collaborative "
        "LM keeps the tied head",
    )
    prompt_user_token: bool = Field(
        True,
        description="recommendation prompts name the user with their ID token (the paper); "
        "beyond the paper, false writes 'A user ... the user' instead, so the item head reads "
        "the history alone, not a user row that short runs leave near its random start "
        "(docs/cllm4rec.md sec. 9). Collaborative documents keep the user token",
    )
    item_init: Literal["random", "content"] = Field(
        "random",
        description="how item rows start: normal at init_std (the paper), or beyond the paper "
        "along the mean base embedding of the item's content text (its `content_fields`, less "
        "the base table's mean), at the norm a random row has: rare items start near items "
        "with similar words (docs/cllm4rec.md sec. 9)",
    )
    mr_mode: MutualMode = Field(
        "sum",
        description="mutual regularisation summed over ID occurrences (the official code; its "
        "weight grows with batch size and history length) or, beyond the paper, their mean "
        "(docs/cllm4rec.md sec. 3)",
    )
    user_content_documents: bool = Field(
        False,
        description="also write `user_i has bought items titled:` -> titles of training items "
        "(off: it repeats the collaborative signal; notes 8.1)",
    )


class CLLM4RecConfig(ModelConfig):
    name: Literal["cllm4rec"] = "cllm4rec"
    backbone: BackboneConfig = Field(
        default_factory=BackboneConfig, description="the frozen LLM (models/backbone.py)"
    )
    init_std: float | None = Field(
        0.02,
        gt=0.0,
        description="std of the ID tables' normal init (official: GPT-2's 0.02); None = std of "
        "the base table, larger for SmolLM2, which spreads the initial item logits widely",
    )
    # --- documents ---
    content_fields: tuple[ContentField, ...] = Field(
        ("title", "categories", "brand"),
        strict=False,
        description="item metadata documents, one per non-empty field (no reviews are staged)",
    )
    max_content_tokens: PositiveInt = Field(
        48, description="tokens kept of a content document's main text"
    )
    max_history_items: PositiveInt = Field(
        100, description="most recent items kept in a prompt or collaborative document"
    )
    # --- losses ---
    permute_history: bool = Field(
        True, description="shuffle a document's items each epoch (paper; the official code doesn't)"
    )
    first_main_token_target: bool = Field(
        True, description="predict the first main token from the prompt (paper; code: off)"
    )
    mr_lambda: NonNegativeFloat = Field(1.0, description="mutual regularisation weight (lambda_V)")
    mr_users: bool = Field(
        False,
        description="regularise user tables too; off since users have no content documents "
        "unless user_content_documents",
    )
    mr_include_targets: bool = Field(
        False, description="finetuning MR also over the held-out target items (official: no)"
    )
    mask_ratio: float = Field(0.2, gt=0.0, lt=1.0, description="share of items held out")
    target_set: TargetSet = Field(
        "heldout",
        description="finetuning targets: the masked items (paper) or all training items (code)",
    )
    # --- schedule ---
    pretrain: PretrainConfig = Field(
        default_factory=PretrainConfig, description="content warm-up and pretraining rounds"
    )
    finetune_content_epochs: bool = Field(
        True, description="follow every finetuning epoch with a content epoch (with MR)"
    )
    score_batch_size: PositiveInt = Field(64, description="prompts per forward pass when ranking")
    extensions: CLLM4RecExtensions = Field(
        default_factory=CLLM4RecExtensions,
        description="options beyond the paper, each off by default (docs/cllm4rec.md sec. 9)",
    )

    @model_validator(mode="after")
    def _keeps_what_defines_the_method(self) -> CLLM4RecConfig:
        # Under its own name CLLM4Rec keeps its pretraining or its mutual regularisation: the
        # collaborative and content LMs tied together are what define it (CLLM4Rec sec. 3).
        if self.name == "cllm4rec" and not self.pretrains and self.mr_lambda == 0:
            raise ValueError(
                "without pretraining and without mutual regularisation this is not CLLM4Rec as "
                "published: name it `cllm4rec-lite` (finetuning with the item head only)"
            )
        return self

    @property
    def pretrains(self) -> bool:
        return self.pretrain.warmup_epochs > 0 or self.pretrain.rounds > 0


class CLLM4RecLiteConfig(CLLM4RecConfig):
    """CLLM4Rec-lite, a recipe beyond the paper under its own name: no pretraining, no mutual
    regularisation and, by default, no user tokens: CLLM4Rec's finetuning with the ID-token item
    head alone, on anonymous prompts (`A user has interacted with <items>, the user will
    interact with`; `extensions.prompt_user_token: true` names the user by ID token instead)."""

    name: Literal["cllm4rec-lite"] = "cllm4rec-lite"
    mr_lambda: NonNegativeFloat = Field(0.0, description="must stay 0 (no mutual regularisation)")
    pretrain: PretrainConfig = Field(
        default_factory=lambda: PretrainConfig(warmup_epochs=0, rounds=0),
        description="must stay empty (no pretraining)",
    )
    finetune_content_epochs: bool = Field(
        False, description="follow every finetuning epoch with a content epoch (no MR)"
    )
    extensions: CLLM4RecExtensions = Field(
        default_factory=dict,
        validate_default=True,
        description="options beyond the paper (prompt_user_token false by default here)",
    )

    @field_validator("extensions", mode="before")
    @classmethod
    def _anonymous_unless_asked(cls, value: object) -> object:
        # The one place lite's default lives, for an absent block and for a block that only
        # names other options alike (a default factory would be replaced by any given block).
        if isinstance(value, dict):
            return {"prompt_user_token": False, **value}
        return value

    @model_validator(mode="after")
    def _is_the_lite_recipe(self) -> CLLM4RecLiteConfig:
        kept = {
            "pretraining": self.pretrains,
            "mutual regularisation (mr_lambda)": self.mr_lambda > 0,
        }
        if any(kept.values()):
            names = ", ".join(name for name, on in kept.items() if on)
            raise ValueError(f"cllm4rec-lite has no {names}: use name `cllm4rec` for those")
        return self
