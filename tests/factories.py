"""Hand-built Label Studio tasks for tests (the exact shapes Label Studio exports)."""

from __future__ import annotations

import copy
import json
from pathlib import Path


def region(rid, start, end, text, label, **extra):
    return {"id": rid, "from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}, **extra}


def choice(rid, start, end, text, value, name="casualty_type"):
    return {"id": rid, "from_name": name, "to_name": "text", "type": "choices",
            "value": {"start": start, "end": end, "text": text[start:end], "choices": [value]}}


def relation(head, tail, label, direction="right"):
    return {"from_id": head, "to_id": tail, "type": "relation", "direction": direction, "labels": [label]}


TEXT = "Wagner Group fighters killed 12 villagers in Bakhmut, said Governor Ivan Petrov."


def good_task(task_id=1, **ann_extra):
    t = TEXT
    result = [
        region("g1", 0, 12, t, "ARMED_GROUP"),
        region("c1", 29, 41, t, "CASUALTY_FIGURE"),
        choice("c1", 29, 41, t, "killed"),
        region("l1", 45, 52, t, "LOCATION"),
        region("o1", 59, 79, t, "OFFICIAL"),
        relation("c1", "g1", "PERPETRATOR"),
        relation("c1", "l1", "LOCATED_IN"),
    ]
    return {
        "id": task_id,
        "data": {"text": t, "source_url": "https://example.org/a"},
        "meta": {"origin": "test"},
        "annotations": [{"id": 100 + task_id, "completed_by": 1, "was_cancelled": False, "ground_truth": False,
                         "created_at": "2024-01-01T10:00:00Z", "updated_at": "2024-01-01T10:00:00Z",
                         "result": result, **ann_extra}],
        "predictions": [],
        "drafts": [],
    }


def write(tmp_path: Path, tasks, name="export.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(tasks))
    return path


def mutate(task, fn):
    task = copy.deepcopy(task)
    fn(task)
    return task
