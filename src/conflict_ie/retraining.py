"""Retraining from the annotation loop: one background worker, one training at a time.

``conflict-ie serve`` hands every training request (Label Studio's "Start training"
button, or enough annotation events) to :meth:`Retrainer.request`, which returns at
once. The worker thread then:

1. pulls a snapshot export of the project (:func:`conflict_ie.labelstudio_client.export_snapshot`)
   into a new run folder ``RUNS/<name>-v<N>``;
2. trains with the serving run's own ``train_config.yaml`` (its base model, schema, split
   and schedule) on that export, in a separate process (``python -m conflict_ie.cli
   train``, at a lower CPU priority), so that the server keeps answering and a crash or
   the memory of training stays out of it;
3. scores the serving model and the new one on the new run's validation split, leaving
   out documents the serving model was trained on (it would look better on them), and
4. switches the server to the new run only when it finished and scored no worse.

Requests that arrive while a training runs are coalesced into one follow-up training
(it starts when the current one ends and sees all annotations made meanwhile). Every
run folder gets a ``retraining.json`` saying what happened and why.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)

RECORD = "retraining.json"
EXPORT = "labelstudio-export.json"


@dataclass
class Job:
    """One training: what asked for it, where it is, how it ended."""

    number: int
    reason: str
    project: int | None
    requested_at: float
    coalesced: int = 0
    state: str = "queued"  # queued, pulling, training, evaluating, accepted, rejected, failed, stopped
    message: str = ""
    run_dir: str | None = None
    version: str | None = None
    base_version: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    documents: int | None = None
    validation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def next_run_dir(runs_dir: Path, name: str) -> Path:
    """``RUNS/<name>-v<N>`` with ``N`` one past the highest there (from 2: the served run is 1).

    Example:
        >>> import tempfile, pathlib; d = pathlib.Path(tempfile.mkdtemp()); (d / "demo-v3").mkdir()
        >>> next_run_dir(d, "demo-v3").name
        'demo-v4'
    """
    base = re.sub(r"-v\d+$", "", name)
    taken = [int(m.group(1)) for p in runs_dir.glob(f"{base}-v*") if (m := re.fullmatch(rf"{re.escape(base)}-v(\d+)",
                                                                                      p.name))]
    return runs_dir / f"{base}-v{max([1, *taken]) + 1}"


def entity_f1(predictor, docs: Sequence) -> float:
    """Strict (exact span and label) micro entity F1 of ``predictor`` on gold documents."""
    from conflict_ie.evaluation import strict_scores

    outputs = predictor.ner([d.text for d in docs])
    pred = [[s for s, _ in out.spans] for out in outputs]
    return float(strict_scores([d.spans for d in docs], pred, predictor.schema.entity_labels)["micro"]["f1"])


def comparison_documents(new_run: Path, current_run: Path) -> tuple[list, int]:
    """The new run's validation documents, less those the current run trained on (by text).

    Returns ``(documents, left_out)``.
    """
    from conflict_ie.corpus import documents_of, load_corpus

    corpus, schema = load_corpus(new_run / "corpus")
    docs = documents_of(corpus["validation"], schema)
    seen: set[str] = set()
    current_corpus = current_run / "corpus"
    if not (current_corpus / "dataset_dict.json").exists():
        try:
            from conflict_ie.config import TrainConfig

            configured = TrainConfig.load(current_run / "train_config.yaml").corpus
            current_corpus = Path(configured) if configured else current_corpus
        except Exception:  # no config, or one that no longer loads: nothing to leave out
            current_corpus = current_run / "corpus"
    if (current_corpus / "dataset_dict.json").exists():
        old, _ = load_corpus(current_corpus)
        seen = set(old["train"]["text"])
    kept = [d for d in docs if d.text not in seen]
    return kept, len(docs) - len(kept)


def train_command(config: Path, export: Path, out: Path, *, nice: int = 10) -> list[str]:
    """The ``conflict-ie train`` process a retraining runs (the serving run's config, the new export)."""
    cmd = [sys.executable, "-m", "conflict_ie.cli", "train", "--config", str(config), "--output", str(out),
           "--set", f"inputs={json.dumps([str(export)])}", "--set", 'corpus=""']
    if nice and shutil.which("nice"):
        cmd = [shutil.which("nice"), "-n", str(nice), *cmd]
    return cmd


def earlier_jobs(runs_dir: Path, name: str) -> list[dict[str, Any]]:
    """The ``retraining.json`` records of the runs retrained from ``name`` (``RUNS/<name>-v<N>``), by
    ``N``: what a server that ran before this one trained, and how each ended. A record that cannot be
    read is listed as such rather than dropped.

    Example:
        >>> import tempfile, pathlib, json; d = pathlib.Path(tempfile.mkdtemp()); (d / "demo-v2").mkdir()
        >>> _ = (d / "demo-v2" / RECORD).write_text(json.dumps({"state": "accepted", "version": "demo-v2-ab"}))
        >>> [j["state"] for j in earlier_jobs(d, "demo")]
        ['accepted']
    """
    base = re.sub(r"-v\d+$", "", name)
    found = []
    for path in Path(runs_dir).glob(f"{base}-v*/{RECORD}"):
        m = re.fullmatch(rf"{re.escape(base)}-v(\d+)", path.parent.name)
        if not m:
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            record = {"state": "unreadable", "message": f"{path}: {exc}"}
        record["run_dir"] = str(path.parent)
        found.append((int(m.group(1)), record))
    return [record for _, record in sorted(found, key=lambda x: x[0])]


class Retrainer:
    """The background worker. ``current()`` gives the serving ``(run_dir, predictor, version)``;
    ``accept(run_dir, predictor)`` switches the server; ``load(run_dir)`` loads a Predictor;
    ``fetch(project)`` returns a Label Studio full JSON export (a list of tasks)."""

    def __init__(self, *, current: Callable[[], tuple[Path, Any, str]], accept: Callable[[Path, Any], None],
                 load: Callable[[Path], Any], fetch: Callable[[int], list[dict]] | None, runs_dir: Path,
                 project: int | None = None, command: Callable[[Path, Path, Path], list[str]] = train_command,
                 timeout: float | None = None, version: Callable[[Path], str] | None = None):
        from conflict_ie.backend import run_version

        self.current, self.accept, self.load, self.fetch = current, accept, load, fetch
        self.runs_dir = Path(runs_dir)
        self.project = project
        self.command = command
        self.timeout = timeout
        self.version = version or run_version
        self.history: list[Job] = []
        self._cond = threading.Condition()
        self._pending: Job | None = None
        self._running: Job | None = None
        self._proc: subprocess.Popen | None = None
        self._stopping = False
        self._numbers = 0
        self._thread = threading.Thread(target=self._loop, name="conflict-ie-retrain", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ requests
    def request(self, reason: str, project: int | None = None) -> dict[str, Any]:
        """Ask for a training; returns at once with ``status`` ``started``, ``queued`` (after the
        running one) or ``coalesced`` (into the one already queued), or ``ignored`` (and why)."""
        if self.fetch is None:
            return {"status": "ignored", "reason": "no Label Studio to pull from: start the server with "
                                                   "--labelstudio-url and LABEL_STUDIO_API_KEY"}
        with self._cond:
            if self._stopping:
                return {"status": "ignored", "reason": "the server is stopping"}
            if project is not None:
                self.project = project
            if self._pending is not None:
                self._pending.coalesced += 1
                self._pending.reason = reason
                return {"status": "coalesced", "job": self._pending.number}
            self._numbers += 1
            self._pending = Job(self._numbers, reason, self.project, time.time())
            status = "queued" if self._running is not None else "started"
            self._cond.notify_all()
            return {"status": status, "job": self._numbers}

    def status(self) -> dict[str, Any]:
        """What the worker is doing, what waits, and every job so far (newest last)."""
        with self._cond:
            return {"running": self._running.to_dict() if self._running else None,
                    "pending": self._pending.to_dict() if self._pending else None,
                    "jobs": [j.to_dict() for j in self.history]}

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing runs or waits (for tests and scripts); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._running is not None or self._pending is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker; a training in progress is ended (its process group killed)."""
        with self._cond:
            self._stopping = True
            self._pending = None
            proc = self._proc
            self._cond.notify_all()
        if proc is not None and proc.poll() is None:
            _kill_group(proc)
        self._thread.join(timeout)

    # ------------------------------------------------------------------ the worker
    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job, self._pending = self._pending, None
                self._running = job
                self.history.append(job)
            try:
                self._run(job)
            except Exception as exc:  # the worker must outlive any one job
                log.exception("retraining job %d failed", job.number)
                job.state, job.message = "failed", f"{type(exc).__name__}: {exc}"
            finally:
                job.finished_at = time.time()
                if job.run_dir:
                    try:
                        (Path(job.run_dir) / RECORD).write_text(json.dumps(job.to_dict(), indent=2) + "\n")
                    except OSError:
                        pass
                with self._cond:
                    self._running = None
                    self._proc = None
                    self._cond.notify_all()
                log.warning("retraining job %d: %s %s", job.number, job.state, job.message)

    def _run(self, job: Job) -> None:
        from conflict_ie.config import TrainConfig
        from conflict_ie.corpus import split_documents
        from conflict_ie.labelstudio import read_labelstudio

        job.started_at = time.time()
        current_dir, current_predictor, current_version = self.current()
        job.base_version = current_version
        config_path = Path(current_dir) / "train_config.yaml"
        if not config_path.exists():
            job.state, job.message = "failed", f"{current_dir} has no train_config.yaml to train with"
            return
        if job.project is None:
            job.state, job.message = "failed", ("no project id: start the server with --labelstudio-project, or "
                                                "train from Label Studio (its request names the project)")
            return
        config = TrainConfig.load(config_path)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        out = next_run_dir(self.runs_dir, Path(current_dir).name)
        out.mkdir()
        job.run_dir = str(out)

        job.state = "pulling"
        tasks = self.fetch(job.project)
        export = out / EXPORT
        export.write_text(json.dumps(tasks, ensure_ascii=False) + "\n", encoding="utf-8")
        docs = read_labelstudio(tasks, current_predictor.schema).documents
        job.documents = len(docs)
        if not split_documents(docs, config.split)["validation"]:
            job.state, job.message = "rejected", (f"{len(docs)} annotated document(s): too few for a validation "
                                                  "split to judge a new model on; annotate more")
            return

        job.state = "training"
        log_path = out / "train.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(self.command(config_path, export, out), stdin=subprocess.DEVNULL,
                                    stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
            with self._cond:
                self._proc = proc
                stopping = self._stopping
            if stopping:
                _kill_group(proc)
            try:
                code = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                job.state, job.message = "failed", f"training ran past {self.timeout:.0f} s and was stopped"
                return
        if self._stopping:
            job.state, job.message = "stopped", "the server stopped during the training"
            return
        if code != 0:
            tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
            job.state, job.message = "failed", f"training exited with status {code}: " + " | ".join(tail)
            return

        job.state = "evaluating"
        job.version = self.version(out)
        docs, left_out = comparison_documents(out, Path(current_dir))
        if not docs:
            job.state, job.message = "rejected", (f"no validation document to compare on ({left_out} left out: the "
                                                  "serving model trained on them)")
            return
        new_predictor = self.load(out)
        old_f1, new_f1 = entity_f1(current_predictor, docs), entity_f1(new_predictor, docs)
        job.validation = {"documents": len(docs), "left_out": left_out, "current_entity_f1": old_f1,
                          "new_entity_f1": new_f1}
        if new_f1 + 1e-9 < old_f1:
            job.state, job.message = "rejected", (f"validation entity F1 {new_f1:.3f} < {old_f1:.3f} of the serving "
                                                  "model")
            return
        self.accept(out, new_predictor)
        job.state, job.message = "accepted", f"validation entity F1 {new_f1:.3f} >= {old_f1:.3f}; now serving {out}"


def _kill_group(proc: subprocess.Popen) -> None:
    """End a process started with ``start_new_session`` and its children: TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
