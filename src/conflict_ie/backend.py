"""Request bodies of ``conflict-ie serve`` -> texts, and predictions -> Label Studio's ML-backend answers.

Plain functions, no web framework: the app in :mod:`conflict_ie.serve` calls them, and
they are tested on hand-built bodies. One ``POST /predict`` takes three shapes:

- ``{"text": "..."}``: ours, one text -> ``Prediction.to_dict()``
- ``{"texts": ["...", ...]}``: ours, many -> ``{"predictions": [...]}`` in order
- ``{"tasks": [{"id": 1, "data": {"text": "..."}}, ...], ...}``: Label Studio's ML-backend
  request -> ``{"results": [{"result", "score", "model_version"}, ...]}``, one per task, in
  order (Label Studio drops the whole batch when the count differs).

A malformed body raises :class:`RequestError`, whose message names the field.
Protocol facts (Label Studio 1.23.2): ``../shared/spec/labelstudio.md``.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from conflict_ie.errors import InputError
from conflict_ie.predictor import as_text
from conflict_ie.results import Prediction
from conflict_ie.schema import LabelSchema

#: Events Label Studio's auto-created webhook sends that mean "the annotations changed".
ANNOTATION_EVENTS = frozenset({"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED",
                               "ANNOTATIONS_DELETED"})
TRAIN_ACTION = "START_TRAINING"


class RequestError(Exception):
    """A bad request: an HTTP status and a message that names the field.

    Example:
        >>> str(RequestError(422, "texts[2]", "expected a string, got int"))
        'texts[2]: expected a string, got int'
    """

    def __init__(self, status: int, field: str | None, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.status, self.field, self.message = status, field, message

    def to_dict(self) -> dict[str, Any]:
        return {"error": str(self), "field": self.field}


@dataclass(frozen=True)
class PredictRequest:
    """A parsed ``/predict`` body: ``kind`` is ``text``, ``texts`` or ``tasks``."""

    kind: str
    texts: tuple[str, ...]
    task_ids: tuple[Any, ...] = ()
    #: Label Studio's interactive pre-annotation: the character ranges the annotator selected
    #: (``params.context.result``), for its one task; empty when the whole text is asked for.
    regions: tuple[tuple[int, int], ...] = ()


def context_regions(params: Any, text: str) -> tuple[tuple[int, int], ...]:
    """The selected character ranges of an interactive request's ``params.context.result``.

    Regions without ``value.start``/``value.end`` (a choice, a relation) select nothing; a
    range outside the text is a 422 naming the field.

    Example:
        >>> context_regions({"context": {"result": [{"type": "labels", "value": {"start": 0, "end": 4}}]}},
        ...                 "Kyiv was hit")
        ((0, 4),)
        >>> context_regions({}, "Kyiv")
        ()
    """
    if params is None:
        return ()
    if not isinstance(params, Mapping):
        raise RequestError(422, "params", f"expected an object, got {type(params).__name__}")
    context = params.get("context")
    if context is None:
        return ()
    if not isinstance(context, Mapping):
        raise RequestError(422, "params.context", f"expected an object, got {type(context).__name__}")
    result = context.get("result") or []
    if not isinstance(result, list):
        raise RequestError(422, "params.context.result", f"expected a list, got {type(result).__name__}")
    regions = []
    for i, item in enumerate(result):
        value = item.get("value") if isinstance(item, Mapping) else None
        if not isinstance(value, Mapping) or "start" not in value or "end" not in value:
            continue
        start, end = value["start"], value["end"]
        where = f"params.context.result[{i}].value"
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            raise RequestError(422, where, f"start and end must be integers, got {start!r} and {end!r}")
        if not 0 <= start < end <= len(text):
            raise RequestError(422, where, f"[{start}, {end}) is not a range inside the task's text "
                                           f"({len(text)} characters)")
        regions.append((start, end))
    return tuple(regions)


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise RequestError(422, field, f"expected a string, got {type(value).__name__}")
    try:
        return as_text(value)
    except InputError as exc:
        raise RequestError(422, field, str(exc)) from None


def _items(value: Any, field: str, max_items: int) -> list:
    if not isinstance(value, list):
        raise RequestError(422, field, f"expected a list, got {type(value).__name__}")
    if not value:
        raise RequestError(422, field, "is empty; send at least one")
    if len(value) > max_items:
        raise RequestError(413, field, f"has {len(value)} items; at most {max_items} per request "
                                       "(send several requests, or raise --max-texts)")
    return value


def parse_predict(body: Any, *, text_field: str = "text", max_texts: int = 256) -> PredictRequest:
    """Which of the three shapes ``body`` is, with its texts checked.

    Example:
        >>> parse_predict({"texts": ["Kyiv was hit.", "Calm."]}).texts
        ('Kyiv was hit.', 'Calm.')
        >>> parse_predict({"tasks": [{"id": 7, "data": {"text": "Kyiv"}}]}).task_ids
        (7,)
        >>> parse_predict({"txt": "Kyiv"})
        Traceback (most recent call last):
        ...
        conflict_ie.backend.RequestError: body: expected a 'text' (one string), 'texts' (a list of strings) \
or Label Studio's 'tasks'; got keys ['txt']
    """
    if not isinstance(body, dict):
        raise RequestError(422, "body", f"expected a JSON object, got {type(body).__name__}")
    if "tasks" in body:
        tasks = _items(body["tasks"], "tasks", max_texts)
        texts, ids = [], []
        for i, task in enumerate(tasks):
            if not isinstance(task, dict):
                raise RequestError(422, f"tasks[{i}]", f"expected an object, got {type(task).__name__}")
            data = task.get("data")
            if not isinstance(data, dict):
                raise RequestError(422, f"tasks[{i}].data", "missing, or not an object")
            if text_field not in data:
                raise RequestError(422, f"tasks[{i}].data.{text_field}",
                                   f"missing; the task's data has {sorted(data)} (the labeling config must read "
                                   f"the text from ${text_field})")
            texts.append(_text(data[text_field], f"tasks[{i}].data.{text_field}"))
            ids.append(task.get("id"))
        # Interactive pre-annotation sends one task with the annotator's selection in the context.
        regions = context_regions(body.get("params"), texts[0]) if len(texts) == 1 else ()
        return PredictRequest("tasks", tuple(texts), tuple(ids), regions)
    ours = [k for k in ("text", "texts") if k in body]
    if len(ours) != 1:
        what = "both 'text' and 'texts'; send one" if ours else (
            "expected a 'text' (one string), 'texts' (a list of strings) or Label Studio's 'tasks'; "
            f"got keys {sorted(body)}")
        raise RequestError(422, "body", what)
    unknown = sorted(set(body) - set(ours))
    if unknown:
        raise RequestError(422, unknown[0], f"unknown field (known: {ours[0]!r})")
    if ours[0] == "text":
        return PredictRequest("text", (_text(body["text"], "text"),))
    texts = _items(body["texts"], "texts", max_texts)
    return PredictRequest("texts", tuple(_text(t, f"texts[{i}]") for i, t in enumerate(texts)))


def labelstudio_results(preds: Sequence[Prediction], scores: Sequence[float], model_version: str,
                        schema: LabelSchema | None = None) -> dict[str, list[dict[str, Any]]]:
    """The ML-backend ``/predict`` answer: one ``{"result", "score", "model_version"}`` per task.

    ``score`` is the document confidence (:mod:`conflict_ie.active_learning`), what Label
    Studio sorts by for uncertainty sampling; each region keeps its own entity score.

    Example:
        >>> from conflict_ie.results import Entity
        >>> p = Prediction("Kyiv", (Entity("LOCATION", 0, 4, "Kyiv", 0.9, "e1"),))
        >>> r = labelstudio_results([p], [0.7], "demo-1234abcd")["results"][0]
        >>> r["score"], r["model_version"], r["result"][0]["value"]["labels"]
        (0.7, 'demo-1234abcd', ['LOCATION'])
    """
    if len(preds) != len(scores):
        raise ValueError(f"{len(preds)} predictions but {len(scores)} scores")
    results = []
    for pred, score in zip(preds, scores):
        item = pred.to_labelstudio(model_version=model_version, schema=schema)
        item["score"] = float(score)
        results.append(item)
    return {"results": results}


def run_version(run_dir: str | Path) -> str:
    """A ``model_version`` naming a run: its folder name and the start of the weights' SHA-256.

    The hash changes when a folder is trained again, so Label Studio (which skips tasks that
    already have a prediction of the current version) asks again after a retraining.

    Example:
        >>> import tempfile, pathlib; d = pathlib.Path(tempfile.mkdtemp()) / "demo"; d.mkdir()
        >>> _ = (d / "model.safetensors").write_bytes(b"weights")
        >>> run_version(d)
        'demo-9a129038'
    """
    run_dir = Path(run_dir)
    digest = hashlib.sha256()
    for path in [run_dir / "model.safetensors", run_dir / "relations" / "model.safetensors"]:
        if path.is_file():
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
    return f"{run_dir.resolve().name}-{digest.hexdigest()[:8]}"


def check_label_config(xml: str, schema: LabelSchema) -> list[str]:
    """What in a project's labeling config would make this model's predictions invalid there.

    The model writes regions as ``from_name="label"``, ``to_name="text"`` (the config that
    ``conflict-ie schema labelstudio-config`` renders); a config that lacks that tag, one of
    the model's entity labels, or reads the text from another field cannot take them. Extra
    labels are fine.

    Example:
        >>> schema = LabelSchema.load("conflict")
        >>> check_label_config(schema.labelstudio_config(), schema)
        []
        >>> check_label_config('<View><Text name="text" value="$body"/></View>', schema)[0]
        'no <Labels name="label" toName="text"> tag'
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        return [f"the labeling config is not XML ({exc})"]
    problems = []
    labels = [e for e in root.iter("Labels") if e.get("name") == "label" and e.get("toName") == "text"]
    if not labels:
        problems.append('no <Labels name="label" toName="text"> tag')
    else:
        have = {e.get("value") for e in labels[0].iter("Label")}
        missing = [l for l in schema.entity_labels if l not in have]
        if missing:
            problems.append(f"the labels tag lacks the model's entity label(s) {missing}")
    texts = [e for e in root.iter("Text") if e.get("name") == "text"]
    if not texts:
        problems.append('no <Text name="text"> tag')
    elif texts[0].get("value") != f"${schema.text_field}":
        problems.append(f"the text tag reads {texts[0].get('value')!r}, the model reads ${schema.text_field}")
    return problems


def webhook_event(body: Any) -> tuple[str, int | None]:
    """``(action, project id)`` of a Label Studio webhook or ``START_TRAINING`` body.

    Example:
        >>> webhook_event({"action": "START_TRAINING", "project": {"id": 3, "title": "x"}})
        ('START_TRAINING', 3)
    """
    if not isinstance(body, Mapping):
        raise RequestError(422, "body", f"expected a JSON object, got {type(body).__name__}")
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise RequestError(422, "action", "missing, or not a string")
    project = body.get("project")
    pid = project.get("id") if isinstance(project, Mapping) else project
    if isinstance(pid, str) and pid.split(".")[0].isdigit():  # the ML API's "<id>.<created_ts>"
        pid = int(pid.split(".")[0])
    return action, pid if isinstance(pid, int) and not isinstance(pid, bool) else None
