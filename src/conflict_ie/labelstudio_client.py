"""A running Label Studio: create a project from a schema and import articles; pull a full export.

Uses ``label-studio-sdk`` 2.x (calls verified against Label Studio 1.23.2, see
``../shared/spec/labelstudio.md``). The pull uses a *snapshot* export with
expanded annotators and full predictions, so nothing the direct export drops
(cancelled annotations are kept and flagged; the reader decides) is lost.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from conflict_ie.errors import InputError
from conflict_ie.schema import LabelSchema


def client(url: str, api_key: str):
    """An SDK client; fails early with a clear message when the server cannot be reached."""
    import httpx
    from label_studio_sdk import LabelStudio

    try:
        httpx.get(url.rstrip("/") + "/health", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        raise InputError(f"Label Studio at {url} is not reachable: {exc}") from None
    return LabelStudio(base_url=url, api_key=api_key)


def sdk_call(what: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, an SDK call, with Label Studio's HTTP errors turned into an
    :class:`InputError` that says what was being done (``what``) and what the server answered.

    Example:
        >>> sdk_call("add", lambda a, b: a + b, 1, 2)
        3
    """
    from label_studio_sdk.core.api_error import ApiError

    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        hint = " (check LABEL_STUDIO_API_KEY)" if exc.status_code in (401, 403) else ""
        raise InputError(f"Label Studio refused to {what}: HTTP {exc.status_code} {exc.body}{hint}") from None


def read_texts(path: str | Path, text_field: str = "text") -> list[dict[str, Any]]:
    """Tasks to import from a folder of ``.txt`` files or a JSONL file of objects with a text field.

    Example:
        >>> import tempfile, os; d = tempfile.mkdtemp(); _ = open(os.path.join(d, "a.txt"), "w").write("Hi")
        >>> read_texts(d)
        [{'data': {'text': 'Hi', 'source_file': 'a.txt'}}]
    """
    path = Path(path)
    tasks = []
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise InputError("no .txt files in the folder", source=path)
        for f in files:
            tasks.append({"data": {text_field: f.read_text(encoding="utf-8"), "source_file": f.name}})
        return tasks
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", source=path) from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {n} is not JSON: {exc.msg}", source=path) from None
        if not isinstance(obj, dict) or not isinstance(obj.get(text_field), str):
            raise InputError(f"line {n} has no string field {text_field!r}", source=path)
        meta = obj.pop("meta", None)
        tasks.append({"data": obj, **({"meta": meta} if meta else {})})
    return tasks


def init_project(url: str, schema: LabelSchema, texts: str | Path, *, title: str, api_key: str) -> tuple[int, int]:
    """Create a project with the schema's labeling config and import the articles."""
    ls = client(url, api_key)
    tasks = read_texts(texts, schema.text_field)
    project = sdk_call("create the project", ls.projects.create, title=title, label_config=schema.labelstudio_config())
    sdk_call("import tasks", ls.projects.import_tasks, id=project.id, request=tasks, return_task_ids=True)
    return project.id, len(tasks)


def export_snapshot(ls, project: int, *, timeout: float = 120.0) -> list[dict[str, Any]]:
    """A full JSON snapshot export of every task, annotators expanded, predictions in full."""
    snap = sdk_call(
        "create an export",
        ls.projects.exports.create,
        id=project,
        title=f"conflict-ie pull {time.strftime('%Y-%m-%d %H:%M:%S')}",
        serialization_options={"predictions": {"only_id": False}, "annotations__completed_by": {"only_id": False}},
        annotation_filter_options={"usual": True, "ground_truth": True, "skipped": True},
    )
    deadline = time.monotonic() + timeout
    while True:
        status = str(getattr(sdk_call("read the export", ls.projects.exports.get, id=project, export_pk=snap.id),
                             "status", "completed"))
        if status.endswith("completed"):
            break
        if status.endswith("failed"):
            raise InputError(f"Label Studio failed to build export {snap.id} of project {project}")
        if time.monotonic() > deadline:
            raise InputError(f"export {snap.id} of project {project} not ready after {timeout:.0f} s")
        time.sleep(0.5)
    # download() is a generator: join inside sdk_call so that HTTP errors are translated too.
    raw = sdk_call("download the export",
                lambda: b"".join(ls.projects.exports.download(id=project, export_pk=snap.id, export_type="JSON")))
    return json.loads(raw)


def pull(url: str, project: int, out: str | Path, *, api_key: str) -> int:
    """Write a project's full snapshot export to ``out``; returns the number of tasks."""
    tasks = export_snapshot(client(url, api_key), project)
    Path(out).write_text(json.dumps(tasks, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(tasks)
