"""Catalogue-constrained decoding for CALRec, beyond the paper (which samples free lines and grounds
them with BM25; shared/papers/calrec.md sec. 6): beam search over the catalogue's prefix trie, the
model's next-token log-probs restricted to tokens that continue some item's line, so every item
returned is a real catalogue item scored by the model's own log-prob of its line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from pydantic import BaseModel, Field, PositiveInt

from llmrec.config_rules import CONFIG_RULES
from llmrec.models.calrec.generate import cached_forward, left_pad
from llmrec.models.calrec.ranking import padding_items
from llmrec.recommendations import Exclusions, Recommendations
from llmrec.retrieval.constrained import CatalogueTrie, TrieNode

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class ConstrainedConfig(BaseModel):
    """Beam search over the catalogue trie instead of sampling + BM25."""

    model_config = CONFIG_RULES

    beam_width: PositiveInt = Field(10, description="unfinished prefixes kept per decoding step")
    stop_at_unique: bool = Field(
        True, description="finish a prefix once it names one line, scored by its tokens so far"
    )
    max_new_tokens: PositiveInt = Field(64, description="tokens decoded per prompt at most")
    batch_prompts: PositiveInt = Field(
        16, description="prompts searched together (their beams share each forward pass)"
    )
    renormalise: bool = Field(
        False,
        description="score tokens by the model's softmax over the trie's allowed tokens only; "
        "then a forced remainder adds 0 and stop_at_unique ranks exactly as full decoding",
    )


@dataclass
class _Found:
    """Items finished so far for one prompt, with their scores (summed raw log-probs)."""

    items: list[np.ndarray]
    scores: list[np.ndarray]

    def add(self, items: np.ndarray, scores: np.ndarray) -> None:
        if len(items):
            self.items.append(items)
            self.scores.append(scores)

    def kth_score(self, k: int, excluded: np.ndarray) -> float:
        """The k-th best score of a non-excluded item, -inf while fewer than k are found."""
        if not self.items:
            return float("-inf")
        scores = np.concatenate(self.scores)[~excluded[np.concatenate(self.items)]]
        if len(scores) < k:
            return float("-inf")
        return float(np.partition(scores, len(scores) - k)[len(scores) - k])


@torch.no_grad()
def constrained_ranking(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    trie: CatalogueTrie,
    k: int,
    exclude: Exclusions = None,
    *,
    beam_width: int,
    stop_at_unique: bool = True,
    max_new_tokens: int = 64,
    renormalise: bool = False,
    batch_prompts: int = 16,
) -> Recommendations:
    """Top-k catalogue items per prompt (token ids) by beam search over `trie`, `batch_prompts`
    prompts searched together (their beams share each forward pass).

    Items are ranked by their score, ties to the lower index; excluded items are dropped; a prompt
    whose search finds fewer than k items is padded with the lowest-index unused items at -inf,
    which the evaluator counts as misses (as in ranking.py).
    """
    num_items = trie.num_items
    k = min(k, num_items)
    item_rows = np.zeros((len(prompts), k), dtype=np.int64)
    score_rows = np.full((len(prompts), k), -np.inf, dtype=np.float32)
    if k == 0:
        return Recommendations(item_rows, score_rows)
    if any(len(prompt) == 0 for prompt in prompts):
        raise ValueError("cannot decode from an empty prompt")
    searches = []
    for row in range(len(prompts)):
        excluded = np.zeros(num_items, dtype=bool)
        if exclude is not None:
            excluded[np.fromiter(exclude[row], np.int64, len(exclude[row]))] = True
        searches.append(_BeamSearch(trie, k, excluded, beam_width, stop_at_unique, renormalise))
    for start in range(0, len(prompts), batch_prompts):
        rows = range(start, min(start + batch_prompts, len(prompts)))
        _search(
            [searches[row] for row in rows], model, [prompts[row] for row in rows], max_new_tokens
        )
    for row, search in enumerate(searches):
        chosen, scores = _best(search.found, search.excluded, k)
        item_rows[row, : len(chosen)] = chosen
        score_rows[row, : len(chosen)] = scores
        unwanted = set(np.flatnonzero(search.excluded).tolist())
        padding = padding_items(set(chosen.tolist()), unwanted, k - len(chosen), num_items)
        item_rows[row, len(chosen) :] = padding
    return Recommendations(item_rows, score_rows)


@dataclass(frozen=True)
class _Candidates:
    """Every one-token extension of the current beams: parent beam, token, child node, score."""

    parents: np.ndarray  # (C,) int64, row of the parent beam
    tokens: np.ndarray  # (C,) int64
    depth: int
    starts: np.ndarray  # (C,) first trie row under the child
    stops: np.ndarray  # (C,)
    num_ended: np.ndarray  # (C,) rows whose line ends with this token
    is_unique: np.ndarray  # (C,) bool
    scores: np.ndarray  # (C,) float64, summed raw log-probs of the prefix


class _BeamSearch:
    """The beam search of one prompt, advanced one token at a time by `step`.

    choice: a prefix's score is the sum of the model's raw log-probs of its tokens (the softmax over
    the whole vocabulary, not renormalised over the allowed tokens), so a finished line scores its
    full log-prob under the model, as teacher forcing would; with `stop_at_unique` a line finished
    early keeps the score of its prefix, an upper bound of its full score (the rest of the line is
    forced by the trie, so decoding it would not change which item the beam names).
    choice: finished items leave the beam and do not take its slots; the beam keeps the
    `beam_width` best unfinished prefixes. The search stops early once k non-excluded items score
    strictly above the best unfinished prefix: raw log-probs are <= 0, so no unfinished prefix can
    still reach the top k.
    choice: prefixes still unfinished after `max_new_tokens` tokens finish with their score so far
    (all items under them share it).
    """

    def __init__(
        self,
        trie: CatalogueTrie,
        k: int,
        excluded: np.ndarray,
        beam_width: int,
        stop_at_unique: bool,
        renormalise: bool,
    ) -> None:
        self.trie, self.k, self.excluded = trie, k, excluded
        self.beam_width, self.stop_at_unique, self.renormalise = (
            beam_width,
            stop_at_unique,
            renormalise,
        )
        self.found = _Found([], [])
        self.beams, self.beam_scores = [trie.root], np.zeros(1)

    def finished_at_root(self) -> bool:
        """One distinct line in the catalogue: every item is found with nothing decoded."""
        if self.stop_at_unique and self.trie.is_unique(self.trie.root):
            self.found.add(self.trie.items(self.trie.root), np.zeros(self.trie.num_items))
            return True
        return False

    def step(self, logits: torch.Tensor, is_last: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """Extend the beams by one token given their next-token `logits` (A, V): the parent row
        and token of each new beam, or None once the search is over."""
        trie = self.trie
        candidates = _expand(trie, self.beams, self.beam_scores, logits.float(), self.renormalise)
        live = _finish(trie, candidates, self.stop_at_unique, self.found)
        if not len(live):
            return None
        chosen = live[np.argsort(-candidates.scores[live], kind="stable")[: self.beam_width]]
        starts = candidates.starts[chosen] + candidates.num_ended[chosen]  # unfinished rows
        self.beams = [
            TrieNode(candidates.depth, int(start), int(stop))
            for start, stop in zip(starts, candidates.stops[chosen], strict=True)
        ]
        self.beam_scores = candidates.scores[chosen]  # descending
        if is_last:
            for node, score in zip(self.beams, self.beam_scores, strict=True):
                items = trie.order[node.start : node.stop]
                self.found.add(items, np.full(len(items), score))
            return None
        if self.found.kth_score(self.k, self.excluded) > self.beam_scores[0]:
            return None
        return candidates.parents[chosen], candidates.tokens[chosen]


def _search(
    searches: list[_BeamSearch],
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
) -> None:
    """Run the searches of `prompts` together: one left-padded prefill, then each step one
    forward pass over every prompt's beams, the KV cache rows gathered per beam (as generate.py
    copies them per sample)."""
    searching = [i for i, search in enumerate(searches) if not search.finished_at_root()]
    if not searching:
        return
    device = model.device
    ids, mask, positions = left_pad([prompts[i] for i in searching], device)  # (P, T) each
    cache, logits = cached_forward(  # logits (A, V), A = beams of every prompt
        model, None, input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1
    )
    position = positions[:, -1] + 1  # (A,) of the next token
    offsets = np.arange(len(searching) + 1)  # rows of search j: offsets[j]:offsets[j + 1]
    for step in range(max_new_tokens):
        parents, tokens, going = [], [], []
        for j, i in enumerate(searching):
            extension = searches[i].step(
                logits[offsets[j] : offsets[j + 1]], is_last=step == max_new_tokens - 1
            )
            if extension is not None:
                parents.append(offsets[j] + extension[0])
                tokens.append(extension[1])
                going.append(i)
        if not going:
            break
        rows = torch.as_tensor(np.concatenate(parents), device=device)
        cache.batch_select_indices(rows)
        mask = torch.cat([mask[rows], mask.new_ones(len(rows), 1)], dim=1)
        position = position[rows]
        next_tokens = torch.as_tensor(np.concatenate(tokens), device=device)[:, None]  # (A, 1)
        cache, logits = cached_forward(
            model, cache, input_ids=next_tokens, attention_mask=mask, position_ids=position[:, None]
        )
        position = position + 1
        searching = going
        offsets = np.concatenate([[0], np.cumsum([len(t) for t in tokens])])


def _expand(
    trie: CatalogueTrie,
    beams: list[TrieNode],
    beam_scores: np.ndarray,
    logits: torch.Tensor,
    renormalise: bool = False,
) -> _Candidates:
    """The trie children of every beam, scored: the constraint is that only children exist.

    Only the children's log-probs are formed (logit minus the row's logsumexp, as generate.py
    scores its lines), not the whole (A, V) float64 log-softmax, which took a fifth of the time.
    """
    parts = [trie.children(node) for node in beams]
    tokens = np.concatenate([part.tokens for part in parts])
    parents = np.repeat(np.arange(len(beams)), [len(part.tokens) for part in parts])
    index = torch.as_tensor(np.stack([parents, tokens]), device=logits.device)
    child_logits = logits[index[0], index[1]]  # (C,)
    if renormalise:  # log-softmax over each beam's allowed children only
        chosen = child_logits - _group_logsumexp(child_logits, index[0], len(beams))[index[0]]
    else:
        chosen = child_logits - logits.logsumexp(dim=-1)[index[0]]
    chosen = chosen.double().cpu().numpy()
    return _Candidates(
        parents=parents,
        tokens=tokens,
        depth=beams[0].depth + 1,
        starts=np.concatenate([part.starts for part in parts]),
        stops=np.concatenate([part.stops for part in parts]),
        num_ended=np.concatenate([part.num_ended for part in parts]),
        is_unique=np.concatenate([part.is_unique for part in parts]),
        scores=beam_scores[parents] + chosen,
    )


def _finish(
    trie: CatalogueTrie, candidates: _Candidates, stop_at_unique: bool, found: _Found
) -> np.ndarray:
    """Record the items the candidates finish; return the candidates that go on decoding."""
    whole = candidates.is_unique if stop_at_unique else np.zeros_like(candidates.is_unique)
    ends = np.where(whole, candidates.stops, candidates.starts + candidates.num_ended)
    rows = _ranges(candidates.starts, ends)
    found.add(trie.order[rows], np.repeat(candidates.scores, ends - candidates.starts))
    return np.flatnonzero(ends < candidates.stops)


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenated ranges starts[i]:stops[i]."""
    lengths = stops - starts
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(int(lengths.sum())) - offsets + np.repeat(starts, lengths)


def _best(found: _Found, excluded: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best non-excluded items and their float32 scores, ties to the lower index."""
    if not found.items:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    items = np.concatenate(found.items)
    scores = np.concatenate(found.scores).astype(np.float32)  # ties judged as they are returned
    kept = ~excluded[items]
    items, scores = items[kept], scores[kept]
    order = np.lexsort((items, -scores))[:k]
    return items[order], scores[order]


def _group_logsumexp(values: torch.Tensor, groups: torch.Tensor, num_groups: int) -> torch.Tensor:
    """(G,) logsumexp of `values` (C,) within each group id in `groups` (C,)."""
    maxima = torch.full((num_groups,), float("-inf"), dtype=values.dtype, device=values.device)
    maxima = maxima.scatter_reduce(0, groups, values, reduce="amax")
    sums = torch.zeros(num_groups, dtype=values.dtype, device=values.device)
    sums = sums.index_add(0, groups, torch.exp(values - maxima[groups]))
    return maxima + torch.log(sums)
