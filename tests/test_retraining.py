"""The retraining worker: accept, reject, coalesce, fail, stop; and the server switching runs.

Most tests replace the training process by a small script that copies the serving run
(same weights, so "no worse" holds) and builds the corpus from the export the worker
pulled; one ``slow`` test runs the real ``conflict-ie train`` process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from conflict_ie.labelstudio import documents_to_tasks
from conflict_ie.markup import parse_markup
from conflict_ie.retraining import Retrainer, next_run_dir

GROUPS = ["Wagner Group", "Russian forces", "Al-Shabaab", "Somali forces"]
PLACES = ["Bakhmut", "Belgorod", "Mogadishu", "Kherson", "Goma"]

FAKE_TRAIN = '''
import shutil, sys, time
from pathlib import Path
src, export, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
delay, code = float(sys.argv[4]), int(sys.argv[5])
time.sleep(delay)
if code:
    print("training blew up: out of patience")
    sys.exit(code)
for p in src.iterdir():
    if p.name in ("corpus", "checkpoints", "report", "retraining.json"):
        continue
    (shutil.copytree if p.is_dir() else shutil.copy2)(p, out / p.name)
from conflict_ie.config import TrainConfig
from conflict_ie.corpus import build_corpus, save_corpus, split_documents
from conflict_ie.labelstudio import read_labelstudio
from conflict_ie.schema import LabelSchema
cfg = TrainConfig.load(src / "train_config.yaml")
schema = LabelSchema.load(src / "schema.yaml")
docs = read_labelstudio(str(export), schema).documents
save_corpus(build_corpus(split_documents(docs, cfg.split), schema), schema, out / "corpus")
'''


def varied_tasks(schema, n: int) -> list[dict]:
    """``n`` annotated tasks with distinct texts (unlike the world run's training texts)."""
    docs = []
    for i in range(n):
        g, p = GROUPS[i % len(GROUPS)], PLACES[i % len(PLACES)]
        body = (f"{{{g}|ARMED_GROUP#g}} fighters killed {{{i + 3} villagers|CASUALTY_FIGURE#c=killed}} in "
                f"{{{p}|LOCATION#l}} on day {i}.\n--- relations\nc PERPETRATOR g\nc LOCATED_IN l")
        docs.append(parse_markup(body, schema, doc_id=f"t{i}"))
    return documents_to_tasks(docs, first_id=100)


@pytest.fixture(scope="module")
def run(world):
    return world[0] / "run"


@pytest.fixture
def fake(tmp_path):
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAIN)

    def command(delay: float = 0.0, code: int = 0):
        return lambda config, export, out: [sys.executable, str(script), str(config.parent), str(export), str(out),
                                            str(delay), str(code)]
    return command


class Oracle:
    """A stand-in predictor: the gold spans of known texts (``perfect``) or nothing."""

    def __init__(self, schema, docs, perfect: bool):
        self.schema, self.perfect = schema, perfect
        self.gold = {d.text: d.spans for d in docs}

    def ner(self, texts, batch_size=8):
        class Out:
            def __init__(self, spans):
                self.spans = [(s, 1.0) for s in spans]
        return [Out(self.gold.get(t, ()) if self.perfect else ()) for t in texts]


def make_retrainer(run, tmp_path, schema, tasks, command, *, current=None, load=None):
    from conflict_ie.predictor import Predictor

    served = {"dir": run, "predictor": current or Predictor.from_pretrained(run, progress=False)}
    accepted = []
    calls = []

    def fetch(project):
        calls.append(project)
        return tasks

    def accept(path, predictor):
        accepted.append(path)
        served.update(dir=path, predictor=predictor)

    r = Retrainer(current=lambda: (served["dir"], served["predictor"], served["dir"].name), accept=accept,
                  load=load or (lambda p: Predictor.from_pretrained(p, progress=False)), fetch=fetch,
                  runs_dir=tmp_path / "runs", project=4, command=command)
    return r, accepted, calls


def test_next_run_dir_numbers_versions(tmp_path):
    assert next_run_dir(tmp_path, "demo").name == "demo-v2"
    (tmp_path / "demo-v2").mkdir()
    (tmp_path / "demo-v10").mkdir()
    (tmp_path / "demo-vx").mkdir()
    assert next_run_dir(tmp_path, "demo-v2").name == "demo-v11"


def test_accepts_a_run_no_worse_and_records_why(run, tmp_path, schema, fake):
    r, accepted, calls = make_retrainer(run, tmp_path, schema, varied_tasks(schema, 12), fake())
    try:
        assert r.request("test", project=9) == {"status": "started", "job": 1}
        assert r.wait_idle(120)
    finally:
        r.stop()
    (job,) = r.status()["jobs"]
    assert job["state"] == "accepted", job
    assert calls == [9] and accepted == [tmp_path / "runs" / "run-v2"]
    assert job["validation"]["documents"] >= 1 and job["validation"]["left_out"] == 0
    assert job["validation"]["new_entity_f1"] == pytest.approx(job["validation"]["current_entity_f1"])
    record = json.loads((tmp_path / "runs" / "run-v2" / "retraining.json").read_text())
    assert record["state"] == "accepted" and record["version"].startswith("run-v2-")
    assert len(json.loads((tmp_path / "runs" / "run-v2" / "labelstudio-export.json").read_text())) == 12


def test_rejects_a_worse_run_and_keeps_serving(run, tmp_path, schema, fake):
    tasks = varied_tasks(schema, 12)
    from conflict_ie.labelstudio import read_labelstudio

    docs = read_labelstudio(tasks, schema).documents
    r, accepted, _ = make_retrainer(run, tmp_path, schema, tasks, fake(),
                                    current=Oracle(schema, docs, perfect=True),
                                    load=lambda p: Oracle(schema, docs, perfect=False))
    try:
        r.request("test")
        assert r.wait_idle(120)
    finally:
        r.stop()
    (job,) = r.status()["jobs"]
    assert job["state"] == "rejected" and "0.000 < 1.000" in job["message"], job
    assert accepted == []


def test_requests_during_a_training_are_coalesced(run, tmp_path, schema, fake):
    r, accepted, _ = make_retrainer(run, tmp_path, schema, varied_tasks(schema, 12), fake(delay=1.5))
    try:
        assert r.request("first")["status"] == "started"
        deadline = time.monotonic() + 30
        while r.status()["running"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert r.request("second")["status"] == "queued"
        assert r.request("third")["status"] == "coalesced"
        assert r.request("fourth")["status"] == "coalesced"
        assert r.wait_idle(180)
    finally:
        r.stop()
    jobs = r.status()["jobs"]
    assert [j["number"] for j in jobs] == [1, 2]  # four requests, two trainings
    assert jobs[1]["coalesced"] == 2 and jobs[1]["reason"] == "fourth"
    assert [j["state"] for j in jobs] == ["accepted", "accepted"]
    assert accepted == [tmp_path / "runs" / "run-v2", tmp_path / "runs" / "run-v3"]  # the second built on the first


def test_too_few_documents_are_rejected_before_training(run, tmp_path, schema):
    r, accepted, _ = make_retrainer(run, tmp_path, schema, varied_tasks(schema, 2),
                                    lambda c, e, o: ["false"])
    try:
        r.request("test")
        assert r.wait_idle(60)
    finally:
        r.stop()
    (job,) = r.status()["jobs"]
    assert job["state"] == "rejected" and "too few" in job["message"] and job["documents"] == 2
    assert not (tmp_path / "runs" / "run-v2" / "train.log").exists()


def test_a_failed_training_says_why(run, tmp_path, schema, fake):
    r, accepted, _ = make_retrainer(run, tmp_path, schema, varied_tasks(schema, 12), fake(code=3))
    try:
        r.request("test")
        assert r.wait_idle(60)
    finally:
        r.stop()
    (job,) = r.status()["jobs"]
    assert job["state"] == "failed" and "status 3" in job["message"] and "out of patience" in job["message"]
    assert accepted == []


def test_stop_ends_a_running_training(run, tmp_path, schema, fake):
    r, accepted, _ = make_retrainer(run, tmp_path, schema, varied_tasks(schema, 12), fake(delay=120))
    r.request("test")
    deadline = time.monotonic() + 30
    while r._proc is None and time.monotonic() < deadline:  # the training process has started
        time.sleep(0.05)
    proc = r._proc
    assert proc is not None and proc.poll() is None
    t0 = time.monotonic()
    r.stop()
    assert time.monotonic() - t0 < 20 and proc.poll() is not None
    assert r.status()["jobs"][0]["state"] == "stopped" and accepted == []
    assert r.request("again")["status"] == "ignored"


# ---------------------------------------------------------------------- through the app
def test_webhook_start_training_switches_the_served_model(run, tmp_path, schema, fake):
    pytest.importorskip("fastapi")
    from starlette.testclient import TestClient

    from conflict_ie.backend import run_version
    from conflict_ie.serve import ServeSettings, create_app

    app = create_app(run, settings=ServeSettings(runs_dir=str(tmp_path / "runs"), retrain_after=2),
                     train_command=fake())
    service = app.state.service
    tasks = varied_tasks(schema, 12)
    pulled = []
    service.retrainer.fetch = lambda project: pulled.append(project) or tasks
    old = run_version(run)
    with TestClient(app) as c:
        assert c.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 6}}).json()["status"] \
            == "counted"
        assert c.post("/webhook", json={"action": "ANNOTATION_UPDATED", "project": {"id": 6}}).json()["status"] \
            == "started"  # the second event reaches --retrain-after 2
        assert service.retrainer.wait_idle(120)
        r = c.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 6, "title": "p"}})
        assert r.json()["status"] == "started"
        assert service.retrainer.wait_idle(120)
        versions = c.get("/versions").json()
        new = run_version(tmp_path / "runs" / "run-v3")
        assert versions["versions"] == [old, run_version(tmp_path / "runs" / "run-v2"), new]
        assert versions["current"] == new and [r["status"] for r in versions["runs"]] == ["served", "served",
                                                                                         "serving"]
        assert c.post("/setup", json={}).json() == {"model_version": new}
        assert c.post("/predict", json={"text": "Wagner Group fighters shelled Bakhmut."}).headers[
            "x-model-version"] == new
    assert pulled == [6, 6]
    # A server started again on the first run still lists what the earlier one trained (from each
    # run's retraining.json), and keeps serving the run it was given.
    again = create_app(run, settings=ServeSettings(runs_dir=str(tmp_path / "runs")), train_command=fake())
    with TestClient(again) as c:
        versions = c.get("/versions").json()
    assert versions["current"] == old
    earlier = [r for r in versions["runs"] if r.get("earlier_server")]
    assert [(Path(r["path"]).name, r["status"]) for r in earlier] == [("run-v2", "accepted"), ("run-v3", "accepted")]
    assert earlier[-1]["version"] == new


@pytest.mark.slow
def test_a_real_retraining_with_the_runs_config(run, tmp_path, schema):
    from conflict_ie.predictor import Predictor
    from conflict_ie.retraining import train_command

    r, accepted, _ = make_retrainer(run, tmp_path, schema, varied_tasks(schema, 12), train_command)
    try:
        r.request("real")
        assert r.wait_idle(600)
    finally:
        r.stop()
    (job,) = r.status()["jobs"]
    assert job["state"] in ("accepted", "rejected"), job
    out = tmp_path / "runs" / "run-v2"
    assert (out / "metrics.json").exists() and (out / "train_config.yaml").exists()
    info = json.loads((out / "training_info.json").read_text())
    assert sum(info["corpus_sizes"].values()) == 12  # trained on the pulled export, not the run's own inputs
    assert Predictor.from_pretrained(out).predict("Wagner Group fighters shelled Bakhmut.") is not None
    assert (job["state"] == "accepted") == (accepted == [out])
