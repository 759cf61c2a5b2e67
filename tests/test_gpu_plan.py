"""The GPU plan's arithmetic (benchmarks/gpu_plan.py) on tiny hand-computed cases."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def plan():
    sys.path.insert(0, str(BENCHMARKS))  # its sibling imports (baselines, calrec_work)
    try:
        spec = importlib.util.spec_from_file_location("gpu_plan", BENCHMARKS / "gpu_plan.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_plan"] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_counting_rules(plan):
    shape = plan.Shape(params=10, layers=2, hidden=3, vocab=7)
    # forward: 2*10*4 + 2*2*3*16 = 80 + 192; training 3x
    assert plan.sequence_flops(shape, 4, trained=False) == 272
    assert plan.sequence_flops(shape, 4) == 816
    assert plan.head_flops(shape, positions=5, width=7) == 2 * 3 * 7 * 5 * 3
    # prefill 272 + head 42; 2 lines x (3 steps x (20 + 42) + 4*2*3*(3*4 + 4.5))
    assert plan.decode_flops(shape, prompt=4, samples=2, new_tokens=3) == 314 + 2 * (186 + 396)
    assert plan.seconds(1e12, peak_tflops=10, mfu=0.5) == pytest.approx(0.2)


def test_padding_and_mixture(plan):
    # batches of 2 from a shuffle of (1, 1, 5): (1, 1 | 5) -> 2 + 5, else (1, 5 | 1) -> 10 + 1
    assert plan.padded_tokens([1, 1, 5], 2, seed=0) in {7, 11}
    assert plan.padded_tokens([3, 3, 3], 2) == 9
    draws = plan.mixture_draws([[0] * 6, [0] * 2], users=[4, 1], exponent=0.5)
    assert draws == pytest.approx([8 * 2 / 3, 8 / 3])
