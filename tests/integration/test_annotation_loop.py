"""The annotation loop against a real Label Studio: ML backend, pre-annotation, ranking, retraining.

``conflict-ie serve`` runs as a process on 127.0.0.1 with an API key (Label Studio
speaks Basic auth to it); Label Studio runs with ``ML_BLOCK_LOCAL_IP=false`` and
``SSRF_PROTECTION_ENABLED=false`` (see conftest.py) so that it may call a backend on
this machine. Everything Label Studio stores is read back through a snapshot export
and compared with what the Predictor says for the same texts.
"""

from __future__ import annotations

import base64
import json

import pytest

from conflict_ie.active_learning import confidences
from conflict_ie.backend import run_version
from conflict_ie.cli import main
from conflict_ie.labelstudio_client import export_snapshot
from conflict_ie.labelstudio_loop import SAMPLING, predictions_of
from conflict_ie.markup import parse_markup
from conflict_ie.predictor import Predictor
from .serve_process import ServeProcess, wait_for

pytestmark = pytest.mark.labelstudio

KEY = "conflict-ie-serve-test-key-0001"
TEXTS = [
    "Wagner Group fighters killed 12 villagers in Bakhmut with drones.",
    "Governor Ivan Petrov of Belgorod said Russian forces repelled an attack. Later two soldiers were taken.",
    "Al-Shabaab militants wounded three soldiers near Mogadishu. Somali forces fought back.",
    "Calm returned to the market on Sunday.",
]
GROUPS = ["Wagner Group", "Russian forces", "Al-Shabaab", "Somali forces"]
PLACES = ["Bakhmut", "Belgorod", "Mogadishu", "Kherson", "Goma"]


@pytest.fixture(scope="module")
def run(world):
    return world[0] / "run"


@pytest.fixture(scope="module")
def predictor(run):
    return Predictor.from_pretrained(run, progress=False)


@pytest.fixture(scope="module")
def serve(run, labelstudio_server, tmp_path_factory):
    url, token = labelstudio_server
    tmp = tmp_path_factory.mktemp("serve")
    proc = ServeProcess(run, tmp / "serve.log", "--api-key-env", "CONFLICT_IE_TEST_KEY", "--labelstudio-url", url,
                        "--runs-dir", str(tmp / "runs"),
                        env={"CONFLICT_IE_TEST_KEY": KEY, "LABEL_STUDIO_API_KEY": token})
    try:
        seconds = proc.wait_healthy()
        print(f"\nconflict-ie serve up at {proc.url} in {seconds:.1f} s (log: {proc.log})")
        assert proc.url.startswith("http://127.0.0.1:")
        yield proc
    finally:
        proc.stop()
        print(f"--- last lines of {proc.log} ---\n{proc.tail(15)}")


def auth_headers():
    return {"Authorization": "Basic " + base64.b64encode(f"labelstudio:{KEY}".encode()).decode()}


def new_project(ls, schema, title, texts):
    project = ls.projects.create(title=title, label_config=schema.labelstudio_config())
    r = ls.projects.import_tasks(id=project.id, request=[{"data": {"text": t}} for t in texts], return_task_ids=True)
    return project.id, list(r.task_ids)


def spans_of(result):
    return [(i["value"]["start"], i["value"]["end"], i["value"]["labels"][0]) for i in result if i["type"] == "labels"]


def check_prediction(pred, expected, version, score):
    """A stored Label Studio prediction equals the Predictor's (spans, casualty types, relations)."""
    assert pred["model_version"] == version
    assert pred["score"] == pytest.approx(score, abs=1e-5)
    result = pred["result"]
    assert spans_of(result) == [(e.start, e.end, e.label) for e in expected.entities]
    by_id = {i["id"]: i for i in result if i["type"] == "labels"}
    choices = {i["id"]: i["value"]["choices"][0] for i in result if i["type"] == "choices"}
    assert choices == {e.id: e.attribute("casualty_type") for e in expected.entities if e.attribute("casualty_type")}
    rels = [(i["from_id"], i["to_id"], i["labels"][0], i["direction"]) for i in result if i["type"] == "relation"]
    assert rels == [(r.head.id, r.tail.id, r.label, "bi" if r.symmetric else "right") for r in expected.relations]
    assert all(a in by_id and b in by_id for a, b, _, _ in rels)


def test_labelstudio_gets_predictions_from_serve(labelstudio_server, serve, predictor, run, schema):
    from label_studio_sdk import LabelStudio

    url, token = labelstudio_server
    ls = LabelStudio(base_url=url, api_key=token)
    version = run_version(run)
    pid, ids = new_project(ls, schema, "Loop: ML backend", TEXTS)

    backend = ls.ml.create(project=pid, url=serve.url, title="conflict_ie", is_interactive=False,
                           auth_method="BASIC_AUTH", basic_auth_user="labelstudio", basic_auth_pass=KEY)
    assert ls.ml.get(id=backend.id).model_version == version  # Label Studio asked /setup and kept the answer
    hooks = [h for h in ls.webhooks.list(project=pid) if h.url == serve.url + "/webhook"]
    assert len(hooks) == 1, "Label Studio creates a webhook to the backend (needs SSRF_PROTECTION_ENABLED=false)"

    ls.actions.create(id="retrieve_tasks_predictions", project=pid, selected_items={"all": False, "included": ids})
    tasks = {t["id"]: t for t in export_snapshot(ls, pid)}
    assert sorted(tasks) == sorted(ids)
    expected = predictor.predict_batch(TEXTS)
    scores = confidences(predictor, TEXTS)
    assert sum(len(e.entities) for e in expected) >= 3, "the tiny model finds entities in these texts"
    for tid, text, exp, score in zip(ids, TEXTS, expected, scores):
        assert tasks[tid]["data"]["text"] == text
        (pred,) = tasks[tid]["predictions"]
        check_prediction(pred, exp, version, score)

    # Asked again, Label Studio skips tasks that already have a prediction of this version.
    ls.actions.create(id="retrieve_tasks_predictions", project=pid, selected_items={"all": False, "included": ids})
    assert all(len(t["predictions"]) == 1 for t in export_snapshot(ls, pid))


def test_preannotate_then_rank(labelstudio_server, predictor, run, schema, monkeypatch, capsys):
    from label_studio_sdk import LabelStudio

    url, token = labelstudio_server
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", token)
    ls = LabelStudio(base_url=url, api_key=token)
    version = run_version(run)
    pid, ids = new_project(ls, schema, "Loop: preannotate", TEXTS + ["Kyiv was shelled overnight."])
    annotated = ids[-1]
    ls.annotations.create(id=annotated, result=[{"id": "k1", "from_name": "label", "to_name": "text",
                                                 "type": "labels", "value": {"start": 0, "end": 4, "text": "Kyiv",
                                                                             "labels": ["LOCATION"]}}])
    skipped = ids[-2]  # a skipped task is still open: it gets a prediction
    ls.annotations.create(id=skipped, result=[], was_cancelled=True)

    args = ["labelstudio", "preannotate", "--url", url, "--project", str(pid), "--model", str(run)]
    assert main(args + ["--batch-size", "2"]) == 0
    assert f"4 task(s) predicted by {version} (0 already were, 1 annotated" in capsys.readouterr().out
    project = ls.projects.get(id=pid)
    assert project.model_version == version
    tasks = {t["id"]: t for t in export_snapshot(ls, pid)}
    assert tasks[annotated]["predictions"] == []
    expected = dict(zip(ids, predictor.predict_batch(TEXTS)))
    lc = dict(zip(ids, confidences(predictor, TEXTS, "least-confidence")))
    for tid in ids[:-1]:
        (pred,) = tasks[tid]["predictions"]
        check_prediction(pred, expected[tid], version, lc[tid])

    # Again: nothing left to do, nothing duplicated.
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "0 task(s) predicted by" in out and "(4 already were" in out
    assert all(len(t["predictions"]) == (0 if t["id"] == annotated else 1) for t in export_snapshot(ls, pid))

    # Rank by entropy: the scores change in place, and a view lists the open tasks, least certain first.
    rank = ["labelstudio", "rank", "--url", url, "--project", str(pid), "--model", str(run)]
    assert main(rank + ["--strategy", "entropy"]) == 0
    out = capsys.readouterr().out
    assert "ranked 4 unannotated task(s) by entropy" in out
    entropy = dict(zip(ids, confidences(predictor, TEXTS, "entropy")))
    tasks = {t["id"]: t for t in export_snapshot(ls, pid)}
    for tid in ids[:-1]:
        (pred,) = predictions_of(tasks[tid], version)
        assert pred["score"] == pytest.approx(entropy[tid], abs=1e-5)
        assert len(tasks[tid]["predictions"]) == 1
    project = ls.projects.get(id=pid)
    assert project.model_version == version and project.sampling == SAMPLING
    views = [v for v in ls.views.list(project=pid) if (v.data or {}).get("title") == "Least certain first (entropy)"]
    assert len(views) == 1
    listed = [t.id for t in ls.tasks.list(project=pid, view=views[0].id)]
    assert listed == sorted(ids[:-1], key=lambda t: entropy[t])
    assert annotated not in listed

    # Ranking again does not pile up views; another strategy gets its own.
    assert main(rank + ["--strategy", "entropy"]) == 0 and main(rank + ["--strategy", "margin"]) == 0
    titles = sorted((v.data or {}).get("title", "") for v in ls.views.list(project=pid))
    assert titles.count("Least certain first (entropy)") == 1 and "Least certain first (margin)" in titles
    capsys.readouterr()


def annotated_tasks(schema, n):
    """``n`` tasks with distinct texts and one ground-truth annotation each, to import as they are."""
    from conflict_ie.labelstudio import document_results

    tasks = []
    for i in range(n):
        g, p = GROUPS[i % len(GROUPS)], PLACES[i % len(PLACES)]
        doc = parse_markup(f"{{{g}|ARMED_GROUP#g}} fighters killed {{{i + 3} villagers|CASUALTY_FIGURE#c=killed}} in "
                           f"{{{p}|LOCATION#l}} on day {i}.\n--- relations\nc PERPETRATOR g\nc LOCATED_IN l", schema,
                           doc_id=f"a{i}")
        tasks.append({"data": {"text": doc.text}, "annotations": [{"result": document_results(doc)}]})
    return tasks


@pytest.fixture(scope="module")
def untrained_run(run, tmp_path_factory):
    """A copy of ``run`` whose entity model has random weights: retraining on annotations must beat
    it on validation, so the server is expected to switch (rejection is covered in test_retraining)."""
    import shutil

    import torch
    from transformers import AutoModelForTokenClassification

    out = tmp_path_factory.mktemp("untrained") / "untrained"
    shutil.copytree(run, out, ignore=shutil.ignore_patterns("checkpoints", "report"))
    model = AutoModelForTokenClassification.from_pretrained(out)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    model.save_pretrained(out)
    return out


def test_training_from_labelstudio(labelstudio_server, untrained_run, schema, tmp_path):
    from label_studio_sdk import LabelStudio

    url, token = labelstudio_server
    ls = LabelStudio(base_url=url, api_key=token)
    serve = ServeProcess(untrained_run, tmp_path / "serve.log", "--api-key-env", "CONFLICT_IE_TEST_KEY",
                         "--labelstudio-url", url, "--runs-dir", str(tmp_path / "runs"),
                         env={"CONFLICT_IE_TEST_KEY": KEY, "LABEL_STUDIO_API_KEY": token})
    try:
        serve.wait_healthy()
        version = run_version(untrained_run)
        project = ls.projects.create(title="Loop: training", label_config=schema.labelstudio_config())
        pid = project.id
        backend = ls.ml.create(project=pid, url=serve.url, title="conflict_ie train", is_interactive=False,
                               auth_method="BASIC_AUTH", basic_auth_user="labelstudio", basic_auth_pass=KEY)
        events = serve.get("/versions", auth_headers())["events"]["received"]
        r = ls.projects.import_tasks(id=pid, request=annotated_tasks(schema, 12) + [{"data": {"text": TEXTS[3]}}],
                                     return_task_ids=True)
        # A skipped task: not a training document, but an ANNOTATION_CREATED event through the webhook.
        ls.annotations.create(id=r.task_ids[-1], result=[], was_cancelled=True)
        wait_for(lambda: serve.get("/versions", auth_headers())["events"]["received"] > events, 30,
                 "an annotation event reached /webhook")

        ls.ml.train(id=backend.id)  # START_TRAINING to /webhook, with Basic auth

        def finished():
            jobs = serve.get("/versions", auth_headers())["training"]["jobs"]
            return jobs and jobs[-1]["finished_at"] and jobs[-1]

        job = wait_for(finished, 600, "the retraining started by Label Studio finished", interval=2)
        print(f"\nretraining from Label Studio: {job['state']}: {job['message']}")
        assert job["project"] == pid and job["documents"] == 12, job
        exported = json.loads(open(f"{job['run_dir']}/labelstudio-export.json").read())
        assert len(exported) == 13  # every task; the skipped one is not a training document
        assert job["state"] == "accepted", job
        assert job["validation"]["new_entity_f1"] > job["validation"]["current_entity_f1"], job
        versions = serve.get("/versions", auth_headers())
        assert versions["current"] == job["version"] != version
        assert versions["versions"] == [version, job["version"]]
        assert serve.get("/health")["model_version"] == job["version"]
        # Label Studio now sees the new version: /setup answers it, and predictions are named by it.
        ids = r.task_ids[:2]
        ls.actions.create(id="retrieve_tasks_predictions", project=pid,
                          selected_items={"all": False, "included": ids})
        exported = export_snapshot(ls, pid)
        versions_seen = {p["model_version"] for t in exported if t["id"] in ids for p in t.get("predictions", [])}
        assert versions_seen == {job["version"]}, versions_seen
    finally:
        serve.stop()
        print(f"--- last lines of {serve.log} ---\n{serve.tail(15)}")
