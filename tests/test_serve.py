"""``conflict-ie serve`` in process: every endpoint, every class of bad request, auth, batching.

The app runs on the tiny trained run of the ``world`` fixture; answers are compared
with what the Predictor itself returns for the same texts.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

pytest.importorskip("fastapi")
from starlette.testclient import TestClient  # noqa: E402

from conflict_ie.active_learning import confidences  # noqa: E402
from conflict_ie.backend import run_version  # noqa: E402
from conflict_ie.predictor import Predictor  # noqa: E402
from conflict_ie.serve import ServeSettings, create_app  # noqa: E402

TEXT = "Wagner Group fighters killed 12 villagers in Bakhmut with drones."
TEXTS = [TEXT, "Governor Ivan Petrov of Belgorod said Russian forces repelled an attack.", "",
         "Al-Shabaab militants wounded three soldiers near Mogadishu. Somali forces fought back."]
KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="module")
def run(world):
    return world[0] / "run"


@pytest.fixture(scope="module")
def predictor(run):
    return Predictor.from_pretrained(run, progress=False)


def make_client(run, predictor, **settings):
    app = create_app(run, predictor=predictor, settings=ServeSettings(**settings))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(run, predictor):
    with make_client(run, predictor) as c:
        yield c


def roundtrip(obj):
    return json.loads(json.dumps(obj))


# ---------------------------------------------------------------------- the endpoints
def test_health_names_the_model(client, run):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "UP" and body["model_version"] == run_version(run) and body["model"] == str(run)


def test_predict_one_text_is_the_predictors_to_dict(client, predictor, run):
    r = client.post("/predict", json={"text": TEXT})
    assert r.status_code == 200, r.text
    assert r.json() == roundtrip(predictor.predict(TEXT).to_dict())
    assert r.json()["entities"], "the tiny model finds entities in its own training text"
    assert r.headers["x-model-version"] == run_version(run)


def test_predict_texts_in_order(client, predictor):
    r = client.post("/predict", json={"texts": TEXTS})
    assert r.status_code == 200, r.text
    got = r.json()["predictions"]
    assert [p["text"] for p in got] == TEXTS
    assert got == roundtrip([p.to_dict() for p in predictor.predict_batch(TEXTS)])


def test_labelstudio_tasks_get_one_result_each_in_order(client, predictor, run, schema):
    tasks = [{"id": 10 + i, "data": {"text": t, "source": "x"}, "annotations": [], "predictions": []}
             for i, t in enumerate(TEXTS)]
    body = {"tasks": tasks, "project": "3.1700000000", "label_config": schema.labelstudio_config(),
            "params": {"login": None, "password": None, "context": None}}
    r = client.post("/predict", json=body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    version = run_version(run)
    assert len(results) == len(TEXTS)
    expected_scores = confidences(predictor, TEXTS)
    # Compared with the same batch (padding moves the last digits of a score).
    for res, pred, score in zip(results, predictor.predict_batch(TEXTS), expected_scores):
        assert res["model_version"] == version
        assert res["score"] == pytest.approx(score)
        expected = pred.to_labelstudio(model_version=version, schema=predictor.schema)["result"]
        assert res["result"] == roundtrip(expected)
    first = results[0]["result"]
    assert {i["type"] for i in first} >= {"labels", "choices", "relation"}  # regions, casualty_type, relations
    ids = {i["id"] for i in first if i["type"] == "labels"}
    assert {i["id"] for i in first if i["type"] == "choices"} <= ids
    assert all(i["from_id"] in ids and i["to_id"] in ids for i in first if i["type"] == "relation")
    assert [i["value"]["choices"] for i in first if i.get("from_name") == "casualty_type"]


def test_interactive_preannotation_answers_about_the_selection(client, predictor, run):
    """Label Studio's interactive mode sends one task with the annotator's region in
    ``params.context``: the answer keeps what overlaps it, and the relations among that."""
    full = predictor.predict(TEXT)
    assert len(full.entities) >= 2, "the tiny model finds several entities in its training text"
    first, second = full.entities[0], full.entities[1]
    region = {"type": "labels", "from_name": "label", "to_name": "text",
              "value": {"start": first.start, "end": first.end, "text": first.text, "labels": [first.label]}}
    body = {"tasks": [{"id": 5, "data": {"text": TEXT}}], "params": {"context": {"result": [region]}}}
    r = client.post("/predict", json=body)
    assert r.status_code == 200, r.text
    labels = [i for i in r.json()["results"][0]["result"] if i["type"] == "labels"]
    assert [(i["value"]["start"], i["value"]["end"]) for i in labels] == [(first.start, first.end)]
    assert not [i for i in r.json()["results"][0]["result"] if i["type"] == "relation"]
    # Two regions: both entities, and a relation between them if the model predicts one.
    second_region = {**region, "value": {**region["value"], "start": second.start, "end": second.end}}
    body["params"]["context"]["result"].append(second_region)
    got = client.post("/predict", json=body).json()["results"][0]["result"]
    kept = full.within([(first.start, first.end), (second.start, second.end)])
    expected = kept.to_labelstudio(model_version=run_version(run), schema=predictor.schema)["result"]
    assert got == roundtrip(expected)
    # A context without a text range (a choice) asks about the whole text.
    body["params"]["context"]["result"] = [{"type": "choices", "value": {"choices": ["killed"]}}]
    whole = client.post("/predict", json=body).json()["results"][0]["result"]
    assert len([i for i in whole if i["type"] == "labels"]) == len(full.entities)


def test_setup_answers_the_version_and_checks_the_config(client, run, schema):
    r = client.post("/setup", json={"project": "7.1700000000", "schema": schema.labelstudio_config(),
                                    "hostname": "http://localhost:8080", "access_token": "x", "extra_params": None})
    assert r.status_code == 200 and r.json() == {"model_version": run_version(run)}
    wrong = ('<View><Labels name="label" toName="text"><Label value="PERSON"/></Labels>'
             '<Text name="text" value="$body"/></View>')
    r = client.post("/setup", json={"project": "7.1700000000", "schema": wrong})
    assert r.status_code == 422
    assert r.json()["field"] == "schema"
    assert "ARMED_GROUP" in r.json()["error"] and "$body" in r.json()["error"]


def test_versions_lists_the_served_run(client, run):
    r = client.get("/versions")
    assert r.status_code == 200
    body = r.json()
    assert body["versions"] == [run_version(run)] and body["current"] == run_version(run)
    assert body["runs"][0]["status"] == "serving" and body["training"]["jobs"] == []


def test_webhook_events_are_answered_at_once(client):
    r = client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 1}, "annotation": {"id": 5}})
    assert r.status_code == 200 and r.json()["status"] == "counted"
    r = client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 1}})
    assert r.json() == {"status": "ignored", "action": "PROJECT_UPDATED"}
    # No Label Studio to pull from: a training request is refused with the reason, not an error.
    r = client.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 1}})
    assert r.status_code == 200 and r.json()["status"] == "ignored" and "--labelstudio-url" in r.json()["reason"]


def test_page_draws_the_schemas_colours(client, schema):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for ent in schema.entities:
        assert f'"{ent.label}": {{"color": "{ent.color}"' in r.text
    assert "fetch(\"predict\"" in r.text and "innerHTML" not in r.text


def test_openapi_and_docs(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/predict", "/health", "/setup", "/webhook", "/versions"} <= set(spec["paths"])
    shapes = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert [s["required"] for s in shapes] == [["text"], ["texts"], ["tasks"]]


# ---------------------------------------------------------------------- bad requests
BAD = [
    ("not JSON", b"{text: 1}", 400, "body"),
    ("empty body", b"", 400, "body"),
    ("not UTF-8", b'{"text": "\xff"}', 400, "body"),
    ("a JSON list", b'["a"]', 422, "body"),
    ("no known field", b'{"txt": "a"}', 422, "body"),
    ("both shapes", b'{"text": "a", "texts": ["b"]}', 422, "body"),
    ("unknown extra field", b'{"text": "a", "threshold": 0.5}', 422, "threshold"),
    ("text not a string", b'{"text": 12}', 422, "text"),
    ("text a lone surrogate", b'{"text": "\\ud800"}', 422, "text"),
    ("texts not a list", b'{"texts": "abc"}', 422, "texts"),
    ("texts empty", b'{"texts": []}', 422, "texts"),
    ("texts with a number", b'{"texts": ["a", 3]}', 422, "texts[1]"),
    ("tasks not a list", b'{"tasks": {"id": 1}}', 422, "tasks"),
    ("tasks empty", b'{"tasks": []}', 422, "tasks"),
    ("a task not an object", b'{"tasks": [3]}', 422, "tasks[0]"),
    ("a task without data", b'{"tasks": [{"id": 1}]}', 422, "tasks[0].data"),
    ("a task without the text field", b'{"tasks": [{"id": 1, "data": {"body": "x"}}]}', 422, "tasks[0].data.text"),
    ("a task text not a string", b'{"tasks": [{"id": 1, "data": {"text": null}}]}', 422, "tasks[0].data.text"),
    ("a context that is a list", b'{"tasks": [{"data": {"text": "abc"}}], "params": {"context": []}}', 422,
     "params.context"),
    ("a selected region outside the text",
     b'{"tasks": [{"data": {"text": "abc"}}], "params": {"context": {"result": [{"value": {"start": 1, "end": 9}}]}}}',
     422, "params.context.result[0].value"),
    ("a selected region with a string offset",
     b'{"tasks": [{"data": {"text": "abc"}}], "params": {"context": {"result": [{"value": {"start": "1", "end": 2}}]}}}',
     422, "params.context.result[0].value"),
]


@pytest.mark.parametrize("what,body,status,field", BAD, ids=[b[0] for b in BAD])
def test_bad_predict_bodies_name_the_field(client, what, body, status, field):
    r = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    assert r.json()["error"].startswith(field + ":")


def test_too_many_texts_and_too_large_bodies(run, predictor):
    with make_client(run, predictor, max_texts=3, max_body_bytes=2000) as c:
        r = c.post("/predict", json={"texts": ["a"] * 4})
        assert r.status_code == 413 and r.json()["field"] == "texts" and "at most 3" in r.json()["error"]
        r = c.post("/predict", json={"tasks": [{"data": {"text": "a"}}] * 4})
        assert r.status_code == 413 and r.json()["field"] == "tasks"
        r = c.post("/predict", json={"text": "x" * 3000})  # declared by Content-Length
        assert r.status_code == 413 and r.json()["field"] == "body"

        def chunks():  # no Content-Length: counted while it streams in
            yield b'{"text": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}'

        r = c.post("/predict", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["field"] == "body"
        r = c.post("/webhook", content=b'{"action": "X", "pad": "' + b"z" * 3000 + b'"}')
        assert r.status_code == 413
        assert c.post("/predict", json={"text": TEXT}).status_code == 200  # and the server still answers


def test_bad_webhook_and_setup_bodies(client):
    assert client.post("/webhook", content=b"nope").status_code == 400
    r = client.post("/webhook", json={"project": {"id": 1}})
    assert r.status_code == 422 and r.json()["field"] == "action"
    r = client.post("/setup", json=[1])
    assert r.status_code == 422 and r.json()["field"] == "body"
    assert client.get("/predict").status_code == 405


def test_a_failing_prediction_is_a_500_and_the_server_goes_on(run, predictor):
    with make_client(run, predictor) as c:
        service = c.app.state.service
        real = service.batcher.functions["predict"]

        def flaky(texts):
            if "boom" in texts:
                raise RuntimeError("the model fell over")
            return real(texts)

        service.batcher.functions["predict"] = flaky
        r = c.post("/predict", json={"texts": ["boom"]})
        assert r.status_code == 500 and "the model fell over" in r.json()["error"]
        assert c.post("/predict", json={"text": TEXT}).status_code == 200


def test_busy_when_the_queue_is_full(run, predictor):
    with make_client(run, predictor, max_queue_texts=2) as c:
        r = c.post("/predict", json={"texts": ["a", "b", "c"]})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert c.post("/predict", json={"texts": ["a", "b"]}).status_code == 200


# ---------------------------------------------------------------------- auth
def test_api_key(run, predictor, schema):
    with make_client(run, predictor, api_key=KEY) as c:
        assert c.get("/health").status_code == 200 and c.get("/").status_code == 200
        assert c.get("/docs").status_code == 200
        r = c.post("/predict", json={"text": TEXT})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        assert c.post("/predict", json={"text": TEXT}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        basic = base64.b64encode(f"labelstudio:{KEY}".encode()).decode()
        for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}, {"Authorization": f"Basic {basic}"}):
            assert c.post("/predict", json={"text": TEXT}, headers=headers).status_code == 200, headers
        assert c.post("/setup", json={"schema": schema.labelstudio_config()}).status_code == 401
        assert c.post("/setup", json={"schema": schema.labelstudio_config()},
                      headers={"Authorization": f"Basic {basic}"}).status_code == 200
        assert c.get("/versions").status_code == 401
        assert c.get("/versions", headers={"X-API-Key": KEY}).status_code == 200
        # Label Studio's webhook events carry no auth: they are counted; training needs the key.
        assert c.post("/webhook", json={"action": "ANNOTATION_CREATED"}).json()["status"] == "counted"
        assert c.post("/webhook", json={"action": "START_TRAINING"}).json()["status"] == "refused"
        assert "AUTH = true" in c.get("/").text


# ---------------------------------------------------------------------- batching
def test_concurrent_requests_share_batches_and_keep_their_order(run, predictor):
    import httpx

    app = create_app(run, predictor=predictor, settings=ServeSettings(max_wait=0.05, max_batch_texts=64))
    service = app.state.service
    expected = roundtrip([p.to_dict() for p in predictor.predict_batch(TEXTS * 5)])

    async def main():
        service.batcher.start()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
                rs = await asyncio.gather(*[c.post("/predict", json={"texts": [t]}) for t in TEXTS * 5])
                health = await c.get("/health")  # the loop answers while batches run
        finally:
            await service.batcher.stop()
        return rs, health

    rs, health = asyncio.run(main())
    assert health.status_code == 200
    assert [r.json()["predictions"][0] for r in rs] == expected
    stats = service.batcher.stats
    assert stats["requests"] == 20 and stats["items"] == 20 and stats["batches"] < 20, stats


# ---------------------------------------------------------------------- the command line
def test_serve_binds_127_0_0_1_by_default(run, monkeypatch, capsys):
    import uvicorn

    from conflict_ie.cli import main

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    monkeypatch.setenv("CONFLICT_IE_TEST_SERVE_KEY", KEY)
    assert main(["serve", "--model", str(run), "--api-key-env", "CONFLICT_IE_TEST_SERVE_KEY"]) == 0
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 9090)
    assert seen["app"].state.service.settings.api_key == KEY
    assert f"serving {run_version(run)} on http://127.0.0.1:9090" in capsys.readouterr().out
    assert seen["app"].state.service.served.predictor.relation_model is not None
    assert main(["serve", "--model", str(run), "--no-relations", "--port", "9191"]) == 0
    assert seen["port"] == 9191 and seen["app"].state.service.served.predictor.relation_model is None


@pytest.mark.parametrize("args,env,message", [
    (["--model", "no/such/run"], {}, "not a run folder"),
    (["--api-key-env", "CONFLICT_IE_UNSET_VARIABLE"], {}, "CONFLICT_IE_UNSET_VARIABLE: that environment variable"),
    (["--labelstudio-url", "http://127.0.0.1:9"], {"LABEL_STUDIO_API_KEY": ""}, "needs LABEL_STUDIO_API_KEY"),
    (["--max-texts", "0"], {}, "--max-texts must be >= 1"),
])
def test_serve_refuses_bad_options_before_loading(run, monkeypatch, capsys, args, env, message):
    from conflict_ie.cli import main

    monkeypatch.delenv("CONFLICT_IE_UNSET_VARIABLE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    argv = ["serve"] + (args if args[0] == "--model" else ["--model", str(run), *args])
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_labelstudio_commands_need_a_key_and_a_server(run, monkeypatch, capsys):
    from conflict_ie.cli import main

    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    for what in ("preannotate", "rank"):
        assert main(["labelstudio", what, "--url", "http://127.0.0.1:9", "--project", "1", "--model", str(run)]) == 2
        assert "LABEL_STUDIO_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "x")
    assert main(["labelstudio", "rank", "--url", "http://127.0.0.1:9", "--project", "1", "--model", str(run)]) == 2
    assert "not reachable" in capsys.readouterr().err
    assert main(["labelstudio", "rank", "--url", "http://127.0.0.1:9", "--project", "1", "--model", "nope"]) == 2
    assert "not a run folder" in capsys.readouterr().err
