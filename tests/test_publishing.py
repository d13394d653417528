import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conflict_ie.errors import InputError
from conflict_ie.publishing import publish, render_card, stage

GOLDEN = Path(__file__).parent / "golden" / "model_card.md"
TEXT = "Wagner Group fighters killed 12 villagers in Bakhmut. Governor Ivan Petrov of Belgorod said so."

# Runs in a fresh interpreter in which importing conflict_ie fails: plain transformers only.
PIPELINE = r"""
import json, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "conflict_ie":
            raise ImportError("conflict_ie is blocked in this process")
sys.meta_path.insert(0, Block())
try:
    import conflict_ie  # noqa
    raise SystemExit("conflict_ie was importable")
except ImportError:
    pass
from transformers import pipeline
ner = pipeline("token-classification", model=sys.argv[1], aggregation_strategy="simple", device="cpu")
print(json.dumps([[e["entity_group"], int(e["start"]), int(e["end"])] for e in ner(sys.argv[2])]))
"""


def test_dry_run_loads_with_plain_transformers(world, tmp_path):
    from conflict_ie.predictor import Predictor

    out = tmp_path / "pub"
    publish(world[0] / "run", repo_id="me/conflict-tiny", dry_run=True, out=out)
    assert (out / "README.md").exists() and (out / "relations" / "model.safetensors").exists()
    assert not (out / "training_args.bin").exists() and not (out / "checkpoints").exists()
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pt"))
    # One sentence, shorter than the tiny run's 16-token window: the pipeline and the Predictor then
    # read the same single window (on longer texts they window differently, which issue 13 is about).
    text = TEXT.split(". ")[0] + "."
    res = subprocess.run([sys.executable, "-c", PIPELINE, str(out), text], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    via_pipeline = [tuple(x) for x in json.loads(res.stdout.strip().splitlines()[-1])]
    # A plain pipeline takes each word's likeliest tag: that is the Predictor's argmax decoding.
    ours = [(e.label, e.start, e.end) for e in Predictor.from_pretrained(out, decoding="argmax").predict(text).entities]
    assert ours and via_pipeline == ours  # the tiny run does predict entities, so this compares something


def _fake_run(tmp_path, schema) -> Path:
    """A run folder with fixed numbers (no model needed to render a card)."""
    run = tmp_path / "run"
    run.mkdir()
    schema.save(run / "schema.yaml")
    labels = list(schema.entity_labels)

    def block(f):
        return {"micro": {"precision": f, "recall": f, "f1": f}, "macro": {"precision": f, "recall": f, "f1": f},
                "per_label": {l: {"precision": f, "recall": f, "f1": f, "support": 3} for l in labels}}

    metrics = {"ner": {"strict": block(0.5), "lenient": block(0.625), "partial_overlap": {"micro": block(0.75)["micro"]}},
               "n_documents": 4, "n_gold_entities": 15, "n_pred_entities": 14,
               "relations": {k: {"micro": {"precision": 0.25, "recall": 0.2, "f1": 0.2222}, "per_label": {}}
                             for k in ("gold_entities", "end_to_end")},
               "casualties": {"type_accuracy": 0.8, "count_exact": 0.9, "n": 10}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    from conflict_ie.config import TrainConfig
    TrainConfig.from_dict({"base_model": "minilm-l6-offline", "inputs": ["annotations/conflict-news.json"]}).save(
        run / "train_config.yaml")
    (run / "training_info.json").write_text(json.dumps({
        "ner_train_seconds": 250.0, "relation_train_seconds": 90.0, "best_validation_entity_f1": 0.71,
        "global_steps": 300, "corpus_sizes": {"train": 36, "validation": 4, "test": 4},
        "hardware": "CPU only, 2 cores (x86_64); 1 process(es); torch 2.13.0+cpu",
        "corpus_label_counts": {"train": {l: 10 for l in labels}, "validation": {l: 2 for l in labels},
                                "test": {l: 3 for l in labels}},
        "corpus_origins": {"written-for-project": 44}, "year": 2026}))
    (run / "conflict_ie.json").write_text(json.dumps({"max_length": 512, "stride": 32, "decoding": "viterbi"}))
    (run / "relations").mkdir()
    return run


def test_model_card_golden(tmp_path, schema):
    from huggingface_hub import ModelCard

    text = render_card(_fake_run(tmp_path, schema), "owner/conflict-minilm")
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
    card = ModelCard(text)
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "token-classification" and data["library_name"] == "transformers"
    assert data["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    metrics = {m["type"]: m["value"] for m in data["model-index"][0]["results"][0]["metrics"]}
    assert metrics["f1"] == 0.625 and metrics["strict_f1"] == 0.5  # read from metrics.json, not typed
    assert yaml.safe_load(text.split("---")[1])["language"] == "en"
    for section in ("Intended use", "Out-of-scope use", "Label schema", "Training data", "Training procedure",
                    "Evaluation", "Limitations and biases", "How to use", "How to cite"):
        assert f"## {section}" in text


class FakeApi:
    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail

    def create_repo(self, **kw):
        if self.fail:
            raise self.fail
        self.calls.append(("create_repo", kw))

    def create_branch(self, **kw):
        self.calls.append(("create_branch", kw))

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", kw, sorted(p.name for p in Path(kw["folder_path"]).iterdir())))


def test_push_calls_hub_api(world):
    api = FakeApi()
    publish(world[0] / "run", repo_id="owner/name", private=True, revision="v1", commit_message="first", api=api)
    (c1, kw1), (c2, kw2), (c3, kw3, files) = api.calls
    assert c1 == "create_repo" and kw1 == {"repo_id": "owner/name", "private": True, "repo_type": "model",
                                           "exist_ok": True}
    assert c2 == "create_branch" and kw2["branch"] == "v1"
    assert c3 == "upload_folder" and kw3["repo_id"] == "owner/name" and kw3["revision"] == "v1"
    assert kw3["commit_message"] == "first"
    assert {"README.md", "model.safetensors", "config.json", "relations", "metrics.json"} <= set(files)


def test_push_without_network_says_so(world):
    import httpx
    with pytest.raises(InputError, match="no network connection to the Hugging Face Hub"):
        publish(world[0] / "run", repo_id="owner/name", api=FakeApi(fail=httpx.ConnectError("down")))


def test_dry_run_needs_out(world):
    with pytest.raises(InputError, match="--dry-run needs --out"):
        publish(world[0] / "run", repo_id="o/n", dry_run=True)


def test_hub_cache_layout_loads_offline(world, tmp_path):
    """A folder laid out as the Hub cache stores it loads by repo id with HF_HUB_OFFLINE=1."""
    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = cache / "models--owner--conflict-tiny" / "snapshots" / commit
    stage(world[0] / "run", snap, "owner/conflict-tiny")
    (cache / "models--owner--conflict-tiny" / "refs").mkdir(parents=True)
    (cache / "models--owner--conflict-tiny" / "refs" / "main").write_text(commit)
    text = "Wagner Group fighters killed 12 villagers in Bakhmut."
    code = ("import json; from conflict_ie import Predictor; "
            "p = Predictor.from_pretrained('owner/conflict-tiny'); "
            f"print(json.dumps([p.relation_model is not None, p.predict({text!r}).to_dict()]))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)})
    assert res.returncode == 0, res.stderr[-3000:]
    has_relations, loaded = json.loads(res.stdout.strip().splitlines()[-1])
    # The hub copy predicts what the run folder predicts.
    from conflict_ie.predictor import Predictor

    here = Predictor.from_pretrained(world[0] / "run").predict(text).to_dict()
    assert has_relations and loaded["entities"] and [(e["label"], e["start"], e["end"]) for e in loaded["entities"]] \
        == [(e["label"], e["start"], e["end"]) for e in here["entities"]]
