"""The optional vLLM path of CALRec's generation: the fallback when vLLM cannot run, and the
translation of requests and outputs (checked against a stand-in `vllm` module; the real engine
needs a CUDA GPU and is exercised when a session has one)."""

from __future__ import annotations

import importlib.machinery
import logging
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from llmrec.models.backbone import BackboneConfig, load_backbone
from llmrec.models.calrec.generate import GenerationConfig, prompt_seed
from llmrec.models.calrec.vllm_backend import VllmSampler, make_sampler


@pytest.fixture(scope="module")
def backbone(llm_cache_dir: Path):
    return load_backbone(BackboneConfig(source="tiny", cache_dir=llm_cache_dir), False)


def test_without_vllm_generation_falls_back_to_transformers_with_the_reason(
    backbone, caplog, monkeypatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = GenerationConfig(backend="vllm", num_samples=2, max_new_tokens=3)
    folder_asked = []
    with caplog.at_level(logging.WARNING):
        sampler = make_sampler(
            backbone.model, backbone.tokenizer, config, {0}, lambda: folder_asked.append(1)
        )
    assert not isinstance(sampler, VllmSampler) and not folder_asked
    assert "generating with transformers" in caplog.text
    assert "not installed" in caplog.text or "no CUDA GPU" in caplog.text
    (lines,) = sampler([[1, 2, 3]])
    assert len(lines.texts) == 2


@dataclass
class _Completion:
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None


@dataclass
class _RequestOutput:
    outputs: list[_Completion]


def _fake_vllm(calls: dict) -> types.ModuleType:
    module = types.ModuleType("vllm")
    module.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    inputs = types.ModuleType("vllm.inputs")

    class LLM:
        def __init__(self, **kwargs) -> None:
            calls["engine"] = kwargs

        def generate(self, requests, params, use_tqdm=True):
            calls["requests"], calls["params"] = requests, params
            canned = [
                _Completion("red lipstick\nextra", [5, 6, 7], -1.5),
                _Completion("", [], None),
            ]
            return [_RequestOutput(canned[: request["n"]]) for request in params]

    module.LLM = LLM
    module.SamplingParams = lambda **kwargs: kwargs
    inputs.TokensPrompt = lambda **kwargs: kwargs
    module.inputs = inputs
    return module


@pytest.fixture()
def vllm_calls(monkeypatch) -> dict:
    """What the stand-in `vllm` module (installed, with a 'GPU') was asked."""
    calls: dict = {}
    fake = _fake_vllm(calls)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.inputs", fake.inputs)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    return calls


def test_vllm_gets_token_prompts_and_its_outputs_become_our_records(vllm_calls, tmp_path):
    calls = vllm_calls
    config = GenerationConfig(backend="vllm", num_samples=2, temperature=0.7, max_new_tokens=9)
    sampler = make_sampler(None, None, config, {13, 2}, lambda: tmp_path)
    assert isinstance(sampler, VllmSampler)
    assert calls["engine"]["model"] == str(tmp_path)
    first, _ = sampler([[1, 2], (3,)])
    assert [r["prompt_token_ids"] for r in calls["requests"]] == [[1, 2], [3]]
    params = calls["params"][0]
    assert (params["n"], params["max_tokens"], params["temperature"]) == (2, 9, 0.7)
    assert params["stop_token_ids"] == [2, 13]
    assert params["seed"] == prompt_seed(config, [1, 2]) % 2**31
    assert first.texts == ["red lipstick", ""]
    assert first.mean_logprobs == pytest.approx([-0.5, 0.0])
    assert first.num_new_tokens == [3, 0] and first.token_ids == [[5, 6, 7], []]


def test_greedy_vllm_decodes_one_line_and_repeats_it(vllm_calls, tmp_path) -> None:
    """vLLM refuses n > 1 with temperature 0; the G lines are equal anyway."""
    config = GenerationConfig(backend="vllm", num_samples=3, temperature=0, max_new_tokens=9)
    sampler = make_sampler(None, None, config, {2}, lambda: tmp_path)
    (lines,) = sampler([[1, 2]])
    assert vllm_calls["params"][0]["n"] == 1
    assert lines.texts == ["red lipstick"] * 3 and lines.token_ids == [[5, 6, 7]] * 3


def test_memo_reuses_the_lines_of_repeated_prompts_and_forgets_the_oldest(backbone) -> None:
    config = GenerationConfig(num_samples=2, max_new_tokens=3, memo_size=2)
    sampler = make_sampler(backbone.model, backbone.tokenizer, config, {0}, lambda: None)
    asked: list[list[tuple[int, ...]]] = []
    inner = sampler.sampler
    sampler.sampler = lambda prompts: asked.append(list(prompts)) or inner(prompts)
    first = sampler([[1, 2], [3, 4], [1, 2]])
    assert asked == [[(1, 2), (3, 4)]]  # each distinct prompt decoded once
    assert first[0] == first[2]
    again = sampler([[3, 4], [5, 6]])
    assert asked[1:] == [[(5, 6)]] and again[0] == first[1]
    assert list(sampler.memo) == [(3, 4), (5, 6)]  # (1, 2) was the least recent
    fresh = make_sampler(
        backbone.model,
        backbone.tokenizer,
        config.model_copy(update={"memo_size": 0}),
        {0},
        lambda: None,
    )
    (alone,) = fresh([[1, 2]])  # the memo changes the time only (and float rounding)
    assert alone.token_ids == first[0].token_ids
    assert alone.mean_logprobs == pytest.approx(first[0].mean_logprobs, abs=1e-5)
