"""``scripts/bench_softmax.py`` on the tiny trained run: both ways are timed on the same Predictor, the
shipped numpy softmax is put back afterwards, and the two ways give the same probabilities."""

import numpy as np
import torch
from conftest import load_script

from conflict_ie import predictor as predictor_module
from conflict_ie.runtime import softmax


def test_the_baseline_and_the_shipped_softmax_agree():
    logits = torch.randn(3, 7, 5) * 20
    np.testing.assert_allclose(load_script("bench_softmax").torch_softmax(logits), softmax(logits), rtol=1e-5, atol=1e-7)


def test_both_ways_are_timed_and_the_shipped_one_is_restored(world, capsys, monkeypatch):
    tmp, _ = world
    script = load_script("bench_softmax")
    used = []
    monkeypatch.setattr(script, "torch_softmax", lambda x, f=script.torch_softmax: used.append("torch") or f(x))
    assert script.main(["--model", str(tmp / "run"), "--rounds", "1", "--choices", "torch/fp32"]) == 0
    assert used, "the torch.softmax baseline was never run"
    assert predictor_module.softmax is softmax
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| torch/fp32")]
    assert len(row) == 1 and row[0].rstrip().endswith("x |")
