"""``conflict-ie serve``: the model over HTTP, for people, scripts and Label Studio.

    conflict-ie serve --model runs/demo                      # http://127.0.0.1:9090
    curl -s localhost:9090/predict -d '{"text": "Wagner Group fighters shelled Bakhmut."}'

Endpoints (OpenAPI at ``/docs``):

- ``POST /predict``: ``{"text"}`` -> ``Prediction.to_dict()``; ``{"texts": [...]}`` ->
  ``{"predictions": [...]}``; Label Studio's ``{"tasks": [...]}`` -> ``{"results": [...]}``
- ``GET /health``; ``GET /`` (a page to try the model); ``GET /versions``
- Label Studio's ML-backend protocol at the root: ``POST /setup``, ``POST /predict``,
  ``POST /webhook`` (annotation events; ``START_TRAINING`` starts a retraining in the
  background, see :mod:`conflict_ie.retraining`), ``GET /versions``.

Predictions run in one worker thread, concurrent requests grouped into shared batches
(:mod:`conflict_ie.batcher`), so the event loop never blocks. The app binds 127.0.0.1
unless told otherwise. With ``--api-key-env NAME`` every route but ``/``, ``/health``,
the docs and Label Studio's unauthenticated webhook events asks for the key (``Authorization:
Bearer KEY``, ``X-API-Key: KEY`` or HTTP Basic with KEY as the password: Label Studio's
ML-backend record speaks only Basic).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route functions' annotations
# (``request: Request``, imported inside create_app) at run time.
import argparse
import ipaddress
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conflict_ie.errors import InputError

log = logging.getLogger("conflict_ie.serve")


@dataclass(frozen=True)
class ServeSettings:
    """Limits and behaviour of the app (all but ``max_queue_texts`` have a ``conflict-ie serve``
    option). The keys are left out of the ``repr``, so that no log line shows them."""

    api_key: str | None = field(default=None, repr=False)
    max_body_bytes: int = 16 * 2**20
    max_texts: int = 256
    max_batch_texts: int = 32
    max_wait: float = 0.005
    max_queue_texts: int = 4096
    batch_size: int = 8
    strategy: str = "least-confidence"
    labelstudio_url: str | None = None
    labelstudio_key: str | None = field(default=None, repr=False)
    project: int | None = None
    runs_dir: str | None = None
    retrain_after: int = 0
    train_timeout: float | None = None


@dataclass(frozen=True)
class Served:
    """The model being served; replaced whole when a retraining is accepted."""

    run_dir: Path
    predictor: Any
    version: str
    since: float


def _plain(obj: Any):
    """``json.dumps`` default: numpy scalars and arrays as Python numbers and lists."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


class Service:
    """What the routes share: the served model, the batcher, the retrainer, the settings."""

    def __init__(self, model: str | Path, *, settings: ServeSettings, predictor=None,
                 load_options: dict[str, Any] | None = None, train_command=None):
        from conflict_ie.active_learning import STRATEGIES
        from conflict_ie.backend import run_version
        from conflict_ie.batcher import MicroBatcher

        if settings.strategy not in STRATEGIES:
            raise InputError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {settings.strategy!r}")
        self.settings = settings
        self.load_options = {"progress": False, **(load_options or {})}
        run_dir = Path(model)
        predictor = predictor if predictor is not None else self.load(run_dir)
        self.served = Served(run_dir, predictor, run_version(run_dir), time.time())
        self.versions: list[dict[str, Any]] = [self._version_entry(self.served, "serving")]
        self._swap = threading.Lock()
        self.batcher = MicroBatcher({"predict": self._predict, "labelstudio": self._predict_labelstudio},
                                    max_batch=settings.max_batch_texts, max_wait=settings.max_wait,
                                    max_queue=settings.max_queue_texts)
        self.events = {"received": 0, "annotation_changes": 0}
        self.retrainer = self._retrainer(train_command)
        self.earlier = self._earlier_runs()

    # ------------------------------------------------------------------ model
    def load(self, run_dir: Path):
        from conflict_ie.predictor import Predictor

        return Predictor.from_pretrained(run_dir, **self.load_options)

    @staticmethod
    def _version_entry(served: Served, status: str) -> dict[str, Any]:
        return {"version": served.version, "path": str(served.run_dir), "status": status,
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(served.since))}

    def current(self) -> tuple[Path, Any, str]:
        s = self.served
        return s.run_dir, s.predictor, s.version

    def accept(self, run_dir: Path, predictor) -> None:
        """Switch to a retrained run (from the retraining thread); batches in flight finish on the old one."""
        from conflict_ie.backend import run_version

        new = Served(Path(run_dir), predictor, run_version(run_dir), time.time())
        with self._swap:
            for entry in self.versions:
                if entry["status"] == "serving":
                    entry["status"] = "served"
            self.served = new
            self.versions.append(self._version_entry(new, "serving"))
        log.warning("now serving %s (%s)", new.version, new.run_dir)

    def _predict(self, texts: list[str]) -> list:
        served = self.served  # one model for the whole batch
        preds = served.predictor.predict_batch(texts, batch_size=self.settings.batch_size, progress=False)
        return [(p, served.version) for p in preds]

    def _predict_labelstudio(self, texts: list[str]) -> list:
        from conflict_ie.active_learning import confidences

        served = self.served
        preds = served.predictor.predict_batch(texts, batch_size=self.settings.batch_size, progress=False)
        # A second pass of the entity model only (predict_batch keeps no word probabilities): on the
        # demo model 7 s next to 244 s for the full prediction of 8 articles (relations dominate).
        scores = confidences(served.predictor, texts, self.settings.strategy, batch_size=self.settings.batch_size)
        return [(p, s, served.version) for p, s in zip(preds, scores)]

    # ------------------------------------------------------------------ retraining
    def _retrainer(self, train_command):
        from conflict_ie.retraining import Retrainer, train_command as default_command

        s = self.settings
        fetch = None
        if s.labelstudio_url:
            url, key = s.labelstudio_url, s.labelstudio_key or ""

            def fetch(project: int) -> list[dict]:
                from conflict_ie.labelstudio_client import client, export_snapshot

                return export_snapshot(client(url, key), project)

        runs_dir = Path(s.runs_dir) if s.runs_dir else self.served.run_dir.resolve().parent
        return Retrainer(current=self.current, accept=self.accept, load=self.load, fetch=fetch, runs_dir=runs_dir,
                         project=s.project, command=train_command or default_command, timeout=s.train_timeout)

    def on_event(self, action: str, project: int | None, authorized: bool) -> dict[str, Any]:
        """A webhook: START_TRAINING (authorised) trains; annotation events count toward --retrain-after."""
        from conflict_ie.backend import ANNOTATION_EVENTS, TRAIN_ACTION

        self.events["received"] += 1
        if action == TRAIN_ACTION:
            if not authorized:
                return {"status": "refused", "reason": "START_TRAINING needs the API key"}
            return self.retrainer.request("START_TRAINING from Label Studio", project)
        if action in ANNOTATION_EVENTS:
            self.events["annotation_changes"] += 1
            n = self.settings.retrain_after
            if n and self.events["annotation_changes"] >= n:
                self.events["annotation_changes"] = 0
                return self.retrainer.request(f"{n} annotation event(s)", project)
            return {"status": "counted", "annotation_changes": self.events["annotation_changes"],
                    "retrain_after": n or None}
        return {"status": "ignored", "action": action}

    def _earlier_runs(self) -> list[dict[str, Any]]:
        """Runs an earlier server retrained from this one (their ``retraining.json``), so that
        ``/versions`` outlives a restart; a newer accepted run than the served one is pointed out."""
        from conflict_ie.retraining import earlier_jobs

        served = str(self.served.run_dir)
        runs = [{"version": j.get("version"), "path": j["run_dir"], "status": j.get("state"),
                 "message": j.get("message", ""), "earlier_server": True}
                for j in earlier_jobs(self.retrainer.runs_dir, self.served.run_dir.name)
                if Path(j["run_dir"]).resolve() != Path(served).resolve()]
        accepted = [r for r in runs if r["status"] == "accepted"]
        if accepted:
            log.warning("an earlier server accepted %s after retraining; this one serves %s as asked "
                        "(--model %s serves the retrained run)", accepted[-1]["path"], served, accepted[-1]["path"])
        return runs

    def versions_answer(self) -> dict[str, Any]:
        status = self.retrainer.status()
        runs = list(self.versions)
        known = {r["path"] for r in runs}
        # Runs of this server's own jobs are listed from its history below.
        mine = {j["run_dir"] for j in status["jobs"] if j["run_dir"]}
        for entry in self.earlier:
            if entry["path"] not in known and entry["path"] not in mine:
                runs.append(entry)
                known.add(entry["path"])
        for job in status["jobs"]:
            if job["run_dir"] and job["run_dir"] not in known and job["state"] not in ("accepted",):
                runs.append({"version": job["version"], "path": job["run_dir"], "status": job["state"],
                             "message": job["message"]})
        return {"versions": [r["version"] for r in self.versions], "current": self.served.version, "runs": runs,
                "training": status, "events": dict(self.events)}


# ---------------------------------------------------------------------- the app
_TEXT_SCHEMA = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}},
                "additionalProperties": False, "title": "One text"}
_TEXTS_SCHEMA = {"type": "object", "required": ["texts"], "title": "Several texts",
                 "properties": {"texts": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
                 "additionalProperties": False}
_TASKS_SCHEMA = {"type": "object", "required": ["tasks"], "title": "Label Studio ML-backend request",
                 "properties": {"tasks": {"type": "array", "minItems": 1, "items": {
                     "type": "object", "required": ["data"],
                     "properties": {"id": {"type": "integer"}, "data": {"type": "object"}}}},
                     "project": {"type": "string"}, "label_config": {"type": "string"},
                     "params": {"type": "object"}}}


def create_app(model: str | Path, *, settings: ServeSettings | None = None, predictor=None,
               load_options: dict[str, Any] | None = None, train_command=None):
    """The ASGI app for a run folder (``predictor``: one already loaded from it, to reuse).

    Example:
        >>> # import uvicorn; uvicorn.run(create_app("runs/demo"), host="127.0.0.1", port=9090)
    """
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, Response

    from conflict_ie.backend import RequestError, check_label_config, labelstudio_results, parse_predict, webhook_event
    from conflict_ie.batcher import Busy
    from conflict_ie.serve_http import BodyLimitApp, BodyTooLarge, authorized as _authorized
    from conflict_ie.serve_page import render_page

    settings = settings or ServeSettings()
    service = Service(model, settings=settings, predictor=predictor, load_options=load_options,
                      train_command=train_command)

    @asynccontextmanager
    async def lifespan(app):
        service.batcher.start()
        try:
            yield
        finally:
            await service.batcher.stop()
            service.retrainer.stop()

    app = FastAPI(title="conflict-ie", version=service.served.version, lifespan=lifespan,
                  description="Entities, relations and casualty records of conflict news; a Label Studio ML backend.")
    app.state.service = service

    def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(body, ensure_ascii=False, default=_plain), status_code=status,
                        media_type="application/json", headers=headers)

    def error(status: int, message: str, field: str | None = None, headers=None) -> Response:
        return answer({"error": message, "field": field}, status, headers)

    def unauthorized() -> Response:
        return error(401, "missing or wrong API key (Authorization: Bearer KEY, X-API-Key, or Basic auth)",
                     headers={"WWW-Authenticate": 'Basic realm="conflict-ie"'})

    async def json_body(request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            raise RequestError(400, "body", "empty; send a JSON object")
        try:
            return json.loads(raw)
        except UnicodeDecodeError:
            raise RequestError(400, "body", "not UTF-8") from None
        except json.JSONDecodeError as exc:
            raise RequestError(400, "body", f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None

    @app.exception_handler(RequestError)
    async def _request_error(request, exc: RequestError):
        return answer(exc.to_dict(), exc.status)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request, exc: BodyTooLarge):
        return error(413, f"body: over {settings.max_body_bytes} bytes (--max-body-mb)", "body")

    @app.exception_handler(Busy)
    async def _busy(request, exc: Busy):
        return error(503, f"busy: {exc}", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _internal(request, exc: Exception):
        log.exception("internal error on %s", request.url.path)
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        served = service.served
        return HTMLResponse(render_page(served.predictor.schema, served.version, auth=settings.api_key is not None))

    @app.get("/health", summary="Liveness, the served model and the queue")
    async def health():
        s = service.served
        return {"status": "UP", "model_version": s.version, "model": str(s.run_dir),
                "queued_texts": service.batcher.queued, "training": service.retrainer.status()["running"] is not None}

    @app.post("/predict", summary="Predict one text, several texts, or Label Studio tasks",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "oneOf": [_TEXT_SCHEMA, _TEXTS_SCHEMA, _TASKS_SCHEMA]}}}}},
              responses={200: {"description": "``{text}``: Prediction.to_dict(); ``{texts}``: ``{predictions: "
                                               "[...]}``; ``{tasks}``: ``{results: [{result, score, "
                                               "model_version}]}`` (Label Studio's ML-backend answer)"},
                         400: {"description": "not JSON"}, 401: {"description": "API key needed"},
                         413: {"description": "body or list too large"}, 422: {"description": "a field is wrong"},
                         503: {"description": "too many texts waiting"}})
    async def predict(request: Request):
        """``{"text": ...}`` gives ``Prediction.to_dict()``; ``{"texts": [...]}`` gives
        ``{"predictions": [...]}`` in order; a body with ``tasks`` is Label Studio's."""
        if not _authorized(request, settings.api_key):
            return unauthorized()
        text_field = service.served.predictor.schema.text_field
        req = parse_predict(await json_body(request), text_field=text_field, max_texts=settings.max_texts)
        if req.kind == "tasks":
            out = await service.batcher.submit("labelstudio", list(req.texts))
            version = out[0][2]
            preds = [p for p, _, _ in out]
            if req.regions:  # interactive: answer about the annotator's selection only
                preds = [preds[0].within(req.regions)]
            body = labelstudio_results(preds, [s for _, s, _ in out], version, service.served.predictor.schema)
            return answer({**body, "model_version": version}, headers={"X-Model-Version": version})
        out = await service.batcher.submit("predict", list(req.texts))
        version = out[0][1]
        preds = [p.to_dict() for p, _ in out]
        return answer(preds[0] if req.kind == "text" else {"predictions": preds},
                      headers={"X-Model-Version": version})

    @app.post("/setup", summary="Label Studio ML backend: connect a project; answers the model version")
    async def setup(request: Request):
        if not _authorized(request, settings.api_key):
            return unauthorized()
        body = await json_body(request)
        if not isinstance(body, dict):
            raise RequestError(422, "body", f"expected a JSON object, got {type(body).__name__}")
        config = body.get("schema")
        if isinstance(config, str) and config.strip():
            problems = check_label_config(config, service.served.predictor.schema)
            if problems:
                raise RequestError(422, "schema", "this project's labeling config does not fit the model: "
                                   + "; ".join(problems) + " (render one with: conflict-ie schema labelstudio-config)")
        _, project = webhook_event({"action": "SETUP", "project": body.get("project")})
        if project is not None and service.retrainer.project is None:
            service.retrainer.project = project
        return {"model_version": service.served.version}

    @app.post("/webhook", summary="Label Studio events; START_TRAINING retrains in the background")
    async def webhook(request: Request):
        action, project = webhook_event(await json_body(request))
        return service.on_event(action, project, _authorized(request, settings.api_key))

    @app.get("/versions", summary="Model versions: served, trained, and the retraining state")
    async def versions(request: Request):
        if not _authorized(request, settings.api_key):
            return unauthorized()
        return service.versions_answer()

    return BodyLimitApp(app, settings.max_body_bytes)


# ---------------------------------------------------------------------- CLI
def add_arguments(sp: argparse.ArgumentParser) -> None:
    """The ``conflict-ie serve`` options."""
    from conflict_ie.active_learning import STRATEGIES
    from conflict_ie.runtime import add_runtime_arguments

    sp.add_argument("--model", required=True, help="run folder to serve")
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sp.add_argument("--port", type=int, default=9090)
    sp.add_argument("--api-key-env", default=None, metavar="NAME",
                    help="require the key held in environment variable NAME (never put a key on the command line)")
    sp.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when there is one)")
    sp.add_argument("--threshold", type=float, default=0.0, help="drop entities scored below this")
    sp.add_argument("--relation-threshold", type=float, default=None, help="override the run's relation threshold")
    sp.add_argument("--no-relations", action="store_true",
                    help="entities (and no relations or casualty records): much faster pre-annotation on a CPU")
    sp.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default 8)")
    add_runtime_arguments(sp)
    sp.add_argument("--max-batch-texts", type=int, default=32, help="texts grouped into one batch (default 32)")
    sp.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits for company (default 5)")
    sp.add_argument("--max-texts", type=int, default=256, help="texts or tasks per request (default 256)")
    sp.add_argument("--max-body-mb", type=float, default=16.0, help="request body limit in MB (default 16)")
    sp.add_argument("--strategy", default="least-confidence", choices=STRATEGIES,
                    help="uncertainty behind the score of Label Studio predictions (default least-confidence)")
    sp.add_argument("--labelstudio-url", default=None,
                    help="Label Studio to pull annotations from when retraining (key: LABEL_STUDIO_API_KEY)")
    sp.add_argument("--labelstudio-project", type=int, default=None,
                    help="project to retrain from (default: the one Label Studio names in its request)")
    sp.add_argument("--runs-dir", default=None, help="where retrained runs go (default: beside --model)")
    sp.add_argument("--retrain-after", type=int, default=0, metavar="N",
                    help="also retrain after N annotation events (default 0: only on START_TRAINING)")
    sp.add_argument("--train-timeout", type=float, default=None, help="stop a retraining after this many seconds")
    sp.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def settings_from_args(args) -> ServeSettings:
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise InputError(f"--api-key-env {args.api_key_env}: that environment variable is not set or empty")
    ls_key = None
    if args.labelstudio_url:
        ls_key = os.environ.get("LABEL_STUDIO_API_KEY")
        if not ls_key:
            raise InputError("--labelstudio-url needs LABEL_STUDIO_API_KEY (your Label Studio access token)")
    for name in ("max_batch_texts", "max_texts", "batch_size"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.max_body_mb <= 0 or args.max_wait_ms < 0 or args.retrain_after < 0:
        raise InputError("--max-body-mb must be > 0, --max-wait-ms and --retrain-after >= 0")
    return ServeSettings(api_key=api_key, max_body_bytes=int(args.max_body_mb * 2**20), max_texts=args.max_texts,
                         max_batch_texts=args.max_batch_texts, max_wait=args.max_wait_ms / 1000,
                         batch_size=args.batch_size, strategy=args.strategy, labelstudio_url=args.labelstudio_url,
                         labelstudio_key=ls_key, project=args.labelstudio_project, runs_dir=args.runs_dir,
                         retrain_after=args.retrain_after, train_timeout=args.train_timeout)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args) -> int:
    """Run the app on uvicorn until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise InputError("conflict-ie serve needs the serve extra: pip install 'conflict-ie[serve]'") from None
    settings = settings_from_args(args)
    if not Path(args.model).is_dir():
        raise InputError(f"--model {args.model}: not a run folder")
    if not _is_loopback(args.host):
        log.warning("binding %s: other machines can reach this server%s", args.host,
                    "" if settings.api_key else "; consider --api-key-env")
    load_options = {"device": args.device, "threshold": args.threshold,
                    "relation_threshold": args.relation_threshold, "relations": not args.no_relations,
                    "precision": args.precision, "backend": args.backend}
    app = create_app(args.model, settings=settings, load_options=load_options)
    print(f"serving {app.state.service.served.version} on http://{args.host}:{args.port} (docs: /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=10)
    return 0

