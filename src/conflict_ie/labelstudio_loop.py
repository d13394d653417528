"""Pre-annotation and uncertainty ranking of a Label Studio project (``conflict-ie labelstudio preannotate|rank``).

Both read the project through a snapshot export (full predictions, so they can see
which tasks a model version already predicted), predict in batches with a run, and
write Label Studio predictions whose ``model_version`` names the run
(:func:`conflict_ie.backend.run_version`: folder name and weights hash) and whose
``score`` is the document confidence of :mod:`conflict_ie.active_learning`. Both then
set the project's ``model_version`` to it: Label Studio shows prediction scores, and
samples by uncertainty, only for predictions of the project's current version.

- ``preannotate``: predictions for the unannotated tasks, imported in bulk; a task that
  already has a prediction of this version is skipped, so running it again after an
  interruption only does what is left.
- ``rank``: scores every unannotated task with a strategy, writes the score on the
  task's prediction of this version (creating the prediction where there is none),
  turns on "Uncertainty sampling" for the label stream, and makes a Data Manager view
  of the unannotated tasks ordered by score, least certain first.

A task counts as annotated when it has an annotation that was not skipped (cancelled).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from conflict_ie.errors import InputError

SAMPLING = "Uncertainty sampling"


def is_annotated(task: dict[str, Any]) -> bool:
    """Whether a task has an annotation that was not skipped.

    Example:
        >>> is_annotated({"annotations": [{"was_cancelled": True}]}), is_annotated({"annotations": [{"result": []}]})
        (False, True)
    """
    return any(not a.get("was_cancelled") for a in task.get("annotations") or () if isinstance(a, dict))


def predictions_of(task: dict[str, Any], version: str) -> list[dict[str, Any]]:
    """The task's predictions made by ``version`` (full objects, as in a snapshot export)."""
    return [p for p in task.get("predictions") or () if isinstance(p, dict) and p.get("model_version") == version]


def _chunks(items: Sequence, n: int) -> Iterable[Sequence]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _bar(total: int, desc: str, progress: bool | None):
    from tqdm.auto import tqdm

    show = progress if progress is not None else sys.stderr.isatty()
    return tqdm(total=total, unit="task", desc=desc, disable=not show)


def _texts(tasks: Sequence[dict], field: str) -> tuple[list[dict], list[str], int]:
    """Tasks with a string text field and their texts; and how many had none."""
    keep, texts = [], []
    for t in tasks:
        value = (t.get("data") or {}).get(field)
        if isinstance(value, str):
            keep.append(t)
            texts.append(value)
    return keep, texts, len(tasks) - len(keep)


def _load(model: str | Path, predictor=None, relations: bool = True):
    from conflict_ie.backend import run_version
    from conflict_ie.predictor import Predictor

    if not Path(model).is_dir():
        raise InputError(f"--model {model}: not a run folder")
    return predictor or Predictor.from_pretrained(model, progress=False, relations=relations), run_version(model)


def _import(ls, project: int, items: list[dict[str, Any]]) -> None:
    from conflict_ie.labelstudio_client import sdk_call

    response = sdk_call("import predictions", ls.projects.import_predictions, id=project, request=items)
    created = getattr(response, "created", None)
    # Label Studio drops invalid items and only logs it on the server: count what it kept.
    if created is not None and created != len(items):
        raise InputError(f"Label Studio kept {created} of {len(items)} predictions for project {project}; "
                         "its server log says why (often: the labeling config does not fit the model)")


def _set_version(ls, project: int, version: str, **extra) -> None:
    from conflict_ie.labelstudio_client import sdk_call

    sdk_call("set the project's model version", ls.projects.update, id=project, model_version=version,
          show_collab_predictions=True, **extra)


def preannotate(url: str, project: int, model: str | Path, *, api_key: str, batch_size: int = 16,
                strategy: str = "least-confidence", progress: bool | None = None, predictor=None,
                relations: bool = True) -> dict[str, Any]:
    """Predict the project's unannotated tasks with ``model`` and import the predictions.

    Example:
        >>> # preannotate("http://127.0.0.1:8080", 3, "runs/demo", api_key=os.environ["LABEL_STUDIO_API_KEY"])
    """
    from conflict_ie.active_learning import confidences
    from conflict_ie.labelstudio_client import client, export_snapshot

    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    if not Path(model).is_dir():
        raise InputError(f"--model {model}: not a run folder")
    ls = client(url, api_key)  # an unreachable server fails before the model loads
    predictor, version = _load(model, predictor, relations)
    tasks = export_snapshot(ls, project)
    annotated = [t for t in tasks if is_annotated(t)]
    open_tasks = [t for t in tasks if not is_annotated(t)]
    done = [t for t in open_tasks if predictions_of(t, version)]
    todo, texts, no_text = _texts([t for t in open_tasks if not predictions_of(t, version)],
                                  predictor.schema.text_field)
    schema = predictor.schema
    with _bar(len(todo), f"preannotate ({version})", progress) as bar:
        for chunk, chunk_texts in zip(_chunks(todo, batch_size), _chunks(texts, batch_size)):
            preds = predictor.predict_batch(list(chunk_texts), progress=False)
            scores = confidences(predictor, chunk_texts, strategy)
            items = [{**p.to_labelstudio(model_version=version, schema=schema), "score": s, "task": t["id"]}
                     for t, p, s in zip(chunk, preds, scores)]
            _import(ls, project, items)
            bar.update(len(chunk))
    if todo or done or any(predictions_of(t, version) for t in annotated):
        _set_version(ls, project, version)
    return {"model_version": version, "tasks": len(tasks), "predicted": len(todo), "already_predicted": len(done),
            "annotated": len(annotated), "without_text": no_text}


def _view(ls, project: int, title: str) -> int:
    from conflict_ie.labelstudio_client import sdk_call

    data = {"title": title, "ordering": ["tasks:predictions_score"],
            "filters": {"conjunction": "and", "items": [
                {"filter": "filter:tasks:total_annotations", "operator": "equal", "type": "Number", "value": 0}]}}
    for view in sdk_call("list the project's views", ls.views.list, project=project):
        if (getattr(view, "data", None) or {}).get("title") == title:
            sdk_call("update the view", ls.views.update, id=str(view.id), project=project, data=data)
            return view.id
    return sdk_call("create a view", ls.views.create, project=project, data=data).id


def rank(url: str, project: int, model: str | Path, *, api_key: str, strategy: str = "least-confidence",
         batch_size: int = 16, progress: bool | None = None, sampling: bool = True, predictor=None,
         relations: bool = True) -> dict[str, Any]:
    """Score the unannotated tasks by uncertainty and order a Data Manager view by it.

    Example:
        >>> # rank("http://127.0.0.1:8080", 3, "runs/demo", api_key=key, strategy="entropy")["view"]
    """
    from conflict_ie.active_learning import STRATEGIES, confidences
    from conflict_ie.labelstudio_client import client, export_snapshot, sdk_call

    if strategy not in STRATEGIES:
        raise InputError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    if not Path(model).is_dir():
        raise InputError(f"--model {model}: not a run folder")
    ls = client(url, api_key)  # an unreachable server fails before the model loads
    predictor, version = _load(model, predictor, relations)
    tasks = export_snapshot(ls, project)
    todo, texts, no_text = _texts([t for t in tasks if not is_annotated(t)], predictor.schema.text_field)
    scored: list[tuple[int, float]] = []
    updated = created = 0
    with _bar(len(todo), f"rank ({strategy})", progress) as bar:
        for chunk, chunk_texts in zip(_chunks(todo, batch_size), _chunks(texts, batch_size)):
            scores = confidences(predictor, chunk_texts, strategy)
            missing = []
            for task, text, score in zip(chunk, chunk_texts, scores):
                scored.append((task["id"], score))
                mine = predictions_of(task, version)
                for pred in mine:
                    sdk_call("update a prediction's score", ls.predictions.update, id=pred["id"], score=score)
                    updated += 1
                if not mine:
                    missing.append((task, text, score))
            if missing:
                preds = predictor.predict_batch([text for _, text, _ in missing], progress=False)
                _import(ls, project, [{**p.to_labelstudio(model_version=version, schema=predictor.schema),
                                       "score": s, "task": t["id"]} for (t, _, s), p in zip(missing, preds)])
                created += len(missing)
            bar.update(len(chunk))
    if not scored:
        return {"model_version": version, "strategy": strategy, "scored": 0, "view": None, "tasks": len(tasks),
                "without_text": no_text, "least_certain": []}
    _set_version(ls, project, version, **({"sampling": SAMPLING} if sampling else {}))
    view = _view(ls, project, f"Least certain first ({strategy})")
    scored.sort(key=lambda x: x[1])
    return {"model_version": version, "strategy": strategy, "scored": len(scored), "updated": updated,
            "created": created, "view": view, "tasks": len(tasks), "without_text": no_text,
            "least_certain": scored[:5]}


# ---------------------------------------------------------------------- CLI
def add_preannotate_arguments(sp: argparse.ArgumentParser) -> None:
    from conflict_ie.active_learning import STRATEGIES

    sp.add_argument("--url", required=True, help="Label Studio URL (key: LABEL_STUDIO_API_KEY)")
    sp.add_argument("--project", required=True, type=int)
    sp.add_argument("--model", required=True, help="run folder")
    sp.add_argument("--batch-size", type=int, default=16, help="tasks predicted and imported at a time (default 16)")
    sp.add_argument("--strategy", default="least-confidence", choices=STRATEGIES,
                    help="uncertainty behind the predictions' score (default least-confidence)")
    sp.add_argument("--no-relations", action="store_true",
                    help="predict entities only (no relations or casualty types): much faster on a CPU")


def add_rank_arguments(sp: argparse.ArgumentParser) -> None:
    add_preannotate_arguments(sp)
    sp.add_argument("--no-sampling", action="store_true",
                    help="leave the project's task sampling as it is (default: set Uncertainty sampling)")


def _key() -> str:
    import os

    key = os.environ.get("LABEL_STUDIO_API_KEY")
    if not key:
        raise InputError("set LABEL_STUDIO_API_KEY to your Label Studio access token (Account & Settings)")
    return key


def cmd_preannotate(args) -> int:
    out = preannotate(args.url, args.project, args.model, api_key=_key(), batch_size=args.batch_size,
                      strategy=args.strategy, relations=not args.no_relations)
    print(f"{out['predicted']} task(s) predicted by {out['model_version']} ({out['already_predicted']} already were, "
          f"{out['annotated']} annotated, {out['without_text']} without text); project {args.project} now shows "
          f"version {out['model_version']}")
    return 0


def cmd_rank(args) -> int:
    out = rank(args.url, args.project, args.model, api_key=_key(), strategy=args.strategy,
               batch_size=args.batch_size, sampling=not args.no_sampling, relations=not args.no_relations)
    if not out["scored"]:
        print("no unannotated task to rank")
        return 0
    print(f"ranked {out['scored']} unannotated task(s) by {out['strategy']} with {out['model_version']}; view "
          f"{out['view']}: {args.url.rstrip('/')}/projects/{args.project}/data?tab={out['view']}")
    for task, score in out["least_certain"]:
        print(f"  task {task}: confidence {score:.3f}")
    return 0
