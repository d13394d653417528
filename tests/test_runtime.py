"""Precision and backend choices: each decodes what fp32 decodes, and a wrong choice is a clear error.

The agreement stated here is on the tiny trained run of ``conftest.world`` (random 16-wide
encoder, a few steps of training): every choice must keep at least 90% of fp32's entities
(exact span and label), and the other fp32 runtimes (torch-compile, ONNX Runtime) 99%. On the
real model the agreement and the F1 of each choice are measured by ``scripts/bench_predict.py``.
``torch-compile`` is also checked at the level of one runner: one graph for every shape, one
graph per model, and a clear error where it cannot compile.
"""

import json

import pytest

from conflict_ie.errors import ConfigError
from conflict_ie.labelstudio import read_labelstudio
from conflict_ie.predictor import Predictor
from conflict_ie.runtime import SUPPORTED, check_runtime

CHOICES = [c for c in SUPPORTED if c != ("torch", "fp32")]


def _no_compiler() -> str:
    """Why inductor cannot build its kernels here ('' when it can): it needs a C++ compiler and Python.h."""
    import os
    import shutil
    import sysconfig
    from pathlib import Path

    if not shutil.which(os.environ.get("CXX", "g++")):  # inductor's own choice of compiler on Linux
        return f"no C++ compiler {os.environ.get('CXX', 'g++')!r} on PATH"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "no Python headers (Python.h)"
    return ""


NO_COMPILER = _no_compiler()
needs_compiler = pytest.mark.skipif(bool(NO_COMPILER), reason=f"backend torch-compile: {NO_COMPILER}")


def entity_set(preds):
    return {(n, e.start, e.end, e.label) for n, p in enumerate(preds) for e in p.entities}


@pytest.fixture(scope="module")
def texts(world, schema):
    _, export = world
    return [d.text for d in read_labelstudio(export, schema).documents]


@pytest.fixture(scope="module")
def reference(world, texts):
    tmp, _ = world
    return Predictor.from_pretrained(tmp / "run").predict_batch(texts)


@pytest.mark.parametrize("backend,precision", CHOICES)
def test_each_choice_decodes_the_entities_of_fp32(world, texts, reference, backend, precision):
    pytest.importorskip("onnxruntime") if backend == "onnxruntime" else None
    if backend == "torch-compile" and NO_COMPILER:
        pytest.skip(f"backend torch-compile: {NO_COMPILER}")
    tmp, _ = world
    predictor = Predictor.from_pretrained(tmp / "run", precision=precision, backend=backend)
    got = predictor.predict_batch(texts)
    ref, new = entity_set(reference), entity_set(got)
    assert ref, "the tiny run predicts no entity: the comparison would prove nothing"
    agreement = len(ref & new) / len(ref | new)
    assert agreement >= (0.99 if precision == "fp32" else 0.9), (backend, precision, agreement)
    # The relation step runs at the same choice and still gives relations on this run (threshold 0).
    assert sum(len(p.relations) for p in got) > 0


def test_onnx_exports_are_cached_next_to_the_run_and_reused(world, texts):
    pytest.importorskip("onnxruntime")
    tmp, _ = world
    Predictor.from_pretrained(tmp / "run", backend="onnxruntime", precision="int8")
    files = sorted((tmp / "run" / "onnx").glob("*.onnx"))
    assert {f.name.split("-")[0] for f in files} == {"ner", "relations"}
    stamps = {f: f.stat().st_mtime_ns for f in files}
    Predictor.from_pretrained(tmp / "run", backend="onnxruntime", precision="int8")
    assert {f: f.stat().st_mtime_ns for f in files} == stamps  # reused, not exported again


def test_unsupported_choices_name_the_alternatives(world):
    tmp, _ = world
    with pytest.raises(ConfigError, match="not available with backend 'onnxruntime'; choose one of: torch/fp32"):
        Predictor.from_pretrained(tmp / "run", precision="bf16", backend="onnxruntime")
    with pytest.raises(ConfigError, match="precision must be one of"):
        check_runtime("fp16", "torch")
    with pytest.raises(ConfigError, match="backend must be one of"):
        check_runtime("fp32", "tensorrt")


def test_cli_predict_takes_precision_and_backend(world, capsys, tmp_path):
    from conflict_ie.cli import main as cli

    tmp, _ = world
    text = tmp_path / "a.txt"
    text.write_text("Somali forces fought al-Shabaab in Mogadishu.")
    assert cli(["predict", "--model", str(tmp / "run"), "--precision", "int8", "--format", "json", str(text)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out and "entities" in json.dumps(out)


def _tiny_bert(seed: int = 0):
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    return BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32, max_position_embeddings=64)).eval()


@needs_compiler
def test_torch_compile_compiles_once_at_load_for_every_shape():
    """One graph serves every batch size (one row included) and length, with eager's numbers."""
    import torch
    from torch._dynamo.utils import counters

    from conflict_ie.runtime import make_runner

    model = _tiny_bert()
    eager = make_runner(model, "last_hidden_state")
    compiled = make_runner(model, "last_hidden_state", backend="torch-compile")
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1, "nothing was compiled at load time"
    for inference in (True, False):  # tensors made in inference mode (as the Predictor's are) and outside it
        with torch.inference_mode(inference):
            for rows, length in ((3, 5), (1, 7), (4, 11), (2, 3)):
                ids = torch.randint(5, 30, (rows, length))
                mask = torch.ones_like(ids)
                mask[0, length - 1:] = 0  # a padded row
                got, want = compiled(ids, mask), eager(ids, mask)
                assert got.shape == want.shape == (rows, length, 16)
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert counters["stats"]["unique_graphs"] == graphs, "an input compiled a second graph"


@needs_compiler
def test_torch_compile_gives_every_model_its_own_graph(monkeypatch):
    """Two models of one architecture: each compiled runner computes with its own weights, and a
    later model is compiled too, though dynamo keeps few graphs a function (limit set to 1 here:
    with one shared function the second model would run uncompiled)."""
    import torch
    from torch._dynamo.utils import counters

    from conflict_ie.runtime import make_runner

    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 1)
    ids = torch.randint(5, 30, (3, 6))
    mask = torch.ones_like(ids)
    for seed in (1, 2):
        model = _tiny_bert(seed)
        before = counters["stats"]["unique_graphs"]
        compiled = make_runner(model, "last_hidden_state", backend="torch-compile")
        assert counters["stats"]["unique_graphs"] == before + 1, "the model was not compiled"
        torch.testing.assert_close(compiled(ids, mask), make_runner(model, "last_hidden_state")(ids, mask),
                                   rtol=1e-4, atol=1e-4)


def test_torch_compile_failure_is_a_clear_error(monkeypatch):
    import torch

    from conflict_ie.runtime import make_runner

    def no_compiler(module, **kwargs):
        def run(*args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")
        return run

    monkeypatch.setattr(torch, "compile", no_compiler)
    with pytest.raises(ConfigError, match="could not compile.*No working C\\+\\+ compiler.*use backend 'torch'"):
        make_runner(_tiny_bert(), "last_hidden_state", backend="torch-compile")
    with pytest.raises(ConfigError, match="precision 'int8' is not available with backend 'torch-compile'"):
        check_runtime("int8", "torch-compile")


def test_int8_weights_have_a_scale_per_output_channel(world):
    """Both int8 paths quantize per channel (one scale per weight row): on the demo model that kept 88-91% of
    fp32's entities instead of 78-79% with one scale per matrix."""
    import torch

    from conflict_ie.runtime import onnx_file, quantize_int8

    tmp, _ = world
    model = Predictor.from_pretrained(tmp / "run").model
    quantized = [m for m in quantize_int8(model).modules() if type(m).__name__ == "Linear" and callable(m.weight)]
    assert len(quantized) > 1, "no quantized Linear in the torch int8 model"
    assert all(m.weight().qscheme() == torch.per_channel_affine for m in quantized)
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    graph = onnx.load(str(onnx_file(model, "logits", "int8", tmp / "run" / "onnx", "ner"))).graph
    dims = {i.name: list(i.dims) for i in graph.initializer}
    # MatMulInteger(A, B, a_zero_point, b_zero_point): per channel, B's zero point has one entry per column.
    weights = [(dims[n.input[1]], dims.get(n.input[3])) for n in graph.node
               if n.op_type == "MatMulInteger" and n.input[1] in dims]
    assert weights and all(zero == [w[1]] for w, zero in weights), weights
