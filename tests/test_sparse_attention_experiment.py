"""``scripts/experiment_sparse_attention.py``: the sparse attention of levitated markers gives the
dense mask's states, and the script runs on the tiny trained run."""

import copy

import pytest
import torch
from conftest import load_script
from transformers import BertConfig, BertModel

from conflict_ie.relation_data import RelationCollator


def rows(per_span: int):
    """Three packed rows of different text lengths: pair jobs (two spans' markers) and attribute jobs."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for text, jobs in ((9, ["pair", "attr", "pair"]), (6, ["pair"]), (4, ["attr", "attr", "pair", "pair"])):
        groups, pos = [-1] * text, list(range(text))
        for k, kind in enumerate(jobs):
            n = per_span * (2 if kind == "pair" else 1)
            groups += [k] * n
            pos += torch.randint(1, text - 1, (n,), generator=gen).tolist()
        ids = torch.randint(1, 40, (len(groups),), generator=gen).tolist()
        out.append({"input_ids": ids, "position_ids": pos, "groups": groups})
    return out


@pytest.mark.parametrize("per_span", [1, 2])
def test_sparse_attention_gives_the_dense_masks_states(per_span):
    script = load_script("experiment_sparse_attention")
    torch.manual_seed(0)
    dense = BertModel(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=32), add_pooling_layer=False).eval()
    sparse = copy.deepcopy(dense)
    assert script.use_levitated_attention(sparse)
    batch = rows(per_span)
    d = RelationCollator(0)(batch)
    d["lengths"] = [len(r["input_ids"]) for r in batch]
    s = script.sparse_inputs([r["groups"] for r in batch], d["input_ids"].shape[1], torch.finfo(torch.float).min)
    assert s["partners"].shape[-1] == 2 * per_span
    assert script.max_difference(dense, sparse, [(d, s)]) < 1e-5
    # The comparison can fail: a marker that also sees every other job's markers is another model.
    s["partner_mask"].zero_()
    assert script.max_difference(dense, sparse, [(d, s)]) > 1e-3


def test_the_script_runs_on_a_trained_run(world, capsys):
    tmp, _ = world
    script = load_script("experiment_sparse_attention")
    assert script.main(["--model", str(tmp / "run"), "--rounds", "1", "--limit", "4", "--no-onnx"]) == 0
    out = capsys.readouterr().out
    assert "largest state difference" in out and "torch fp32, sparse attention" in out
