"""A seeded sample of a data set's users (`data.sample_users`): try a costly method on a large
data set in minutes, on real users with everything they did.

The sample keeps each chosen user whole (training sequence, validation and test rows) and cuts the
catalogue to the items those users touch, re-indexed in catalogue order: a smaller data set of the
same kind, as if its files held only those users. Users are drawn before the per-user hold-out,
which then splits the sampled users as it would any data set (the temporal split, made while
loading, cuts every user at the same times, so drawing after it changes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from llmrec.data.catalogue import Catalogue
from llmrec.data.loaders.common import LoadResult
from llmrec.data.sequences import AnyEvalSet, Dataset, EvalSet, MultiTargetEvalSet


def sample_loaded_users(loaded: LoadResult, num_users: int | None, seed: int) -> LoadResult:
    """`loaded` with a seeded sample of `num_users` users (all of them when None or not smaller)."""
    dataset = loaded.dataset
    if num_users is None or num_users >= dataset.num_users:
        return loaded
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(dataset.num_users, num_users, replace=False))
    kept_ids = {dataset.user_ids[user] for user in chosen}
    valid = _rows_of(dataset.valid, kept_ids)
    test = _rows_of(dataset.test, kept_ids)
    full = [loaded.full_sequences[user] for user in chosen]
    train = [dataset.train[user] for user in chosen]
    touched = np.unique(np.concatenate([*full, *train, *_items_of(valid), *_items_of(test)]))
    new_index = np.full(dataset.num_items, -1, dtype=np.int64)
    new_index[touched] = np.arange(len(touched))
    sampled = Dataset(
        name=f"{dataset.name} ({num_users} sampled users)",
        catalogue=Catalogue(tuple(dataset.catalogue.items[item] for item in touched)),
        user_ids=tuple(dataset.user_ids[user] for user in chosen),
        train=tuple(new_index[sequence] for sequence in train),
        valid=_reindexed(valid, new_index),
        test=_reindexed(test, new_index),
        split=dataset.split,
    )
    return replace(
        loaded, dataset=sampled, full_sequences=tuple(new_index[sequence] for sequence in full)
    )


def _rows_of(eval_set: AnyEvalSet, user_ids: set[str]) -> AnyEvalSet:
    return eval_set.subset([row for row, user in enumerate(eval_set.user_ids) if user in user_ids])


def _items_of(eval_set: AnyEvalSet) -> list[np.ndarray]:
    targets: Sequence[np.ndarray] = (
        eval_set.targets if isinstance(eval_set, MultiTargetEvalSet) else [eval_set.targets]
    )
    return [np.zeros(0, dtype=np.int64), *eval_set.histories, *targets]


def _reindexed(eval_set: AnyEvalSet, new_index: np.ndarray) -> AnyEvalSet:
    histories = tuple(new_index[history] for history in eval_set.histories)
    if isinstance(eval_set, MultiTargetEvalSet):
        targets = tuple(new_index[target] for target in eval_set.targets)
        return MultiTargetEvalSet(eval_set.user_ids, histories, targets)
    return EvalSet(eval_set.user_ids, histories, new_index[eval_set.targets])
