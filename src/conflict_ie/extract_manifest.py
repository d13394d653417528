"""The manifest of an extract output folder: which job it holds and which shards are done.

``DIR/_manifest.json`` is replaced whole after every committed shard (written to a hidden
temporary file, flushed, renamed), so it always lists exactly the shards whose files are in
place: a run killed at any point leaves at worst an uncommitted shard's files, which the next
run deletes and writes again. The manifest also holds the scan of the inputs (shards with their
row ranges, metadata columns, duplicate ids), so a resumed run does not read the inputs twice.

A job is what decides the tables: the model (its folder and the size and time of every file it
loads), the inputs (path, size and time of each file, in order), the id and text fields, the
shard size, the thresholds, the engine, and the precision and backend. Batch size, device, workers and progress bars do not
change the tables, so a resumed run may change them.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conflict_ie.errors import ConfigError
from conflict_ie.extract_inputs import Scan
from conflict_ie.extract_tables import TABLES, write_text_atomic

MANIFEST = "_manifest.json"
REJECTS = "rejects.jsonl"
REJECT_PIECES = "_rejects"
RAY_STAGING = "_ray_results"
RAY_NODES = "_ray_nodes.json"
VERSION = 1
#: Everything an extract run writes under its folder; ``--overwrite`` removes these and nothing else.
OWN_PATHS = TABLES + (MANIFEST, REJECTS, REJECT_PIECES, RAY_STAGING, RAY_NODES)


def model_fingerprint(path: str | Path) -> dict[str, Any]:
    """The model folder and ``[name, size, mtime_ns]`` of every file a Predictor loads from it
    (the top level and ``relations/``; checkpoints are not read, so not counted).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "config.json").write_text("{}")
        >>> [f[0] for f in model_fingerprint(d)["files"]]
        ['config.json']
    """
    root = Path(path).resolve()
    files = [p for p in root.iterdir() if p.is_file()]
    if (root / "relations").is_dir():
        files += [p for p in (root / "relations").rglob("*") if p.is_file()]
    stats = []
    for p in sorted(files):
        st = p.stat()
        stats.append([str(p.relative_to(root)), st.st_size, st.st_mtime_ns])
    return {"path": str(root), "files": stats}


@dataclass(frozen=True)
class Job:
    """The arguments that decide an extract's tables (see the module docstring)."""

    model: dict[str, Any]
    inputs: list[list]
    id_field: str
    text_field: str
    shard_size: int
    threshold: float
    relation_threshold: float | None
    engine: str
    # int8 finds about 88-91% of fp32's exact spans: a table must not mix the two. Defaults read the
    # manifests written before these options existed (fp32 on torch, the only choice then).
    precision: str = "fp32"
    backend: str = "torch"
    # How int8 weights were quantized ("none" at other precisions); a manifest written before this
    # was recorded and at int8 was per tensor (``runtime.INT8_WEIGHTS``).
    int8_weights: str | None = None

    def __post_init__(self):
        if self.int8_weights is None:
            object.__setattr__(self, "int8_weights", "per-tensor" if self.precision == "int8" else "none")

    def differences(self, other: "Job") -> list[str]:
        """What differs from ``other``, in words.

        Example:
            >>> a = Job({"path": "runs/a", "files": []}, [], "id", "text", 5000, 0.0, None, "local")
            >>> a.differences(dataclasses.replace(a, shard_size=10, engine="ray"))
            ['shard_size (5000 -> 10)', 'engine (local -> ray)']
        """
        out = []
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "model" and mine != theirs:
                out.append(f"model ({mine['path']} -> {theirs['path']})" if mine["path"] != theirs["path"]
                           else f"model (the files in {mine['path']} changed)")
            elif f.name == "inputs" and mine != theirs:
                changed = sum(1 for a, b in zip(mine, theirs) if a != b) + abs(len(mine) - len(theirs))
                out.append(f"inputs ({len(mine)} -> {len(theirs)} files, {changed} added, removed or changed)")
            elif mine != theirs:
                out.append(f"{f.name} ({mine} -> {theirs})")
        return out


@dataclass(frozen=True)
class Manifest:
    """A job, its scan, the shards done (shard index -> counts) and the runs that worked on it."""

    job: Job
    scan: Scan
    done: dict[int, dict[str, Any]] = field(default_factory=dict)
    complete: bool = False
    runs: tuple[dict[str, Any], ...] = ()

    def with_done(self, index: int, counts: dict[str, Any]) -> "Manifest":
        return dataclasses.replace(self, done={**self.done, index: counts})

    def totals(self) -> dict[str, Any]:
        """Counts summed over the done shards: rows, written, rejected by reason, table rows.

        Example:
            >>> m = Manifest(None, None, {0: {"rows": 3, "written": 2, "rejected": {"no_text": 1}, "entities": 4}})
            >>> m.totals()["rejected"], m.totals()["written"]
            ({'no_text': 1}, 2)
        """
        out: dict[str, Any] = {"rows": 0, "written": 0, "rejected": {}, "entities": 0, "relations": 0,
                               "casualties": 0}
        for counts in self.done.values():
            for key, value in counts.items():
                if key == "rejected":
                    for reason, n in value.items():
                        out["rejected"][reason] = out["rejected"].get(reason, 0) + n
                elif key in out:
                    out[key] += value
        out["rejected"] = dict(sorted(out["rejected"].items()))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"version": VERSION, "complete": self.complete, "job": dataclasses.asdict(self.job),
                "done": {str(k): v for k, v in sorted(self.done.items())}, "runs": list(self.runs),
                "scan": self.scan.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Manifest":
        return cls(Job(**d["job"]), Scan.from_dict(d["scan"]), {int(k): v for k, v in d["done"].items()},
                   bool(d["complete"]), tuple(d.get("runs", ())))

    def save(self, out: Path) -> None:
        write_text_atomic(json.dumps(self.to_dict(), indent=1, ensure_ascii=False), out / MANIFEST)


def load_manifest(out: Path) -> Manifest | None:
    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("version") != VERSION:
            raise ValueError(f"version {d.get('version')}, this conflict-ie writes {VERSION}")
        return Manifest.from_dict(d)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); start again with --overwrite") from None


def open_output(out: Path, job: Job, *, overwrite: bool) -> Manifest | None:
    """The manifest to resume from, or None for a fresh start (with ``out`` cleared of an
    earlier run's files when ``overwrite``). Refuses a folder that holds another job, or that
    is not empty and holds no manifest, unless ``overwrite``.
    """
    if overwrite:
        clear_output(out)
        return None
    previous = load_manifest(out)
    if previous is not None:
        diff = previous.job.differences(job)
        if diff:
            raise ConfigError(f"{out} holds an extract with other arguments: {'; '.join(diff)}. Use the same "
                              "arguments to resume it, another --output, or --overwrite to start again")
        return previous
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty and holds no {MANIFEST}: not an extract output. Use an empty or "
                          "new folder, or --overwrite (which removes only what extract writes)")
    return None


def clear_output(out: Path) -> None:
    """Remove what extract writes under ``out`` (:data:`OWN_PATHS`); nothing else."""
    for name in OWN_PATHS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def part_name(index: int, suffix: str = ".parquet") -> str:
    return f"part-{index:06d}{suffix}"


def remove_uncommitted(out: Path, manifest: Manifest) -> int:
    """Delete shard files the manifest does not list (a killed run's last shard, temporary
    files); returns how many. The Ray engine's files, written all at once, go if not complete."""
    keep = {part_name(i) for i in manifest.done} | {part_name(i, ".jsonl") for i in manifest.done}
    removed = 0
    for folder in TABLES + (REJECT_PIECES,):
        d = out / folder
        if d.is_dir():
            for p in d.iterdir():
                if p.name not in keep:
                    p.unlink()
                    removed += 1
    if (out / RAY_STAGING).exists():
        shutil.rmtree(out / RAY_STAGING)
    return removed


def shard_counts(results) -> dict[str, Any]:
    """Rows, articles written, rejects by reason and table rows of a results table."""
    import pyarrow.compute as pc

    reasons = results.column("reason")
    rejected = {}
    if reasons.null_count < len(reasons):
        for item in pc.value_counts(reasons.drop_null()).to_pylist():
            rejected[item["values"]] = item["counts"]
    return {"rows": results.num_rows, "written": reasons.null_count, "rejected": dict(sorted(rejected.items())),
            **{name: int(pc.sum(pc.list_value_length(results.column(name))).as_py() or 0)
               for name in ("entities", "relations", "casualties")}}


def write_shard(out: Path, stem: str, results, sources, meta) -> dict[str, Any]:
    """Write the four tables and the rejects piece of one results table as ``STEM.parquet`` /
    ``STEM.jsonl`` files (each atomically); returns :func:`shard_counts`. The caller commits
    them by saving the manifest afterwards."""
    from conflict_ie.extract_tables import explode, reject_lines, write_parquet_atomic

    for name in TABLES:
        write_parquet_atomic(explode(results, name, sources, meta), out / name / f"{stem}.parquet")
    lines = reject_lines(results, sources)
    write_text_atomic("".join(line + "\n" for line in lines), out / REJECT_PIECES / f"{stem}.jsonl")
    return shard_counts(results)


def finish(out: Path, manifest: Manifest, run: dict[str, Any]) -> Manifest:
    """Complete a job: a table folder with no file gets an empty one (the job had no rows), the
    rejects pieces are joined, in name order, into ``rejects.jsonl``, and the manifest says
    ``complete``."""
    from conflict_ie.extract_tables import table_schema, write_parquet_atomic

    for name in TABLES:
        if not any((out / name).glob("*.parquet")):
            write_parquet_atomic(table_schema(name, manifest.scan.meta).empty_table(), out / name / part_name(0))
    pieces = sorted((out / REJECT_PIECES).glob("*.jsonl")) if (out / REJECT_PIECES).is_dir() else []
    tmp = out / f".{REJECTS}.tmp"
    with open(tmp, "wb") as f:
        for piece in pieces:
            with open(piece, "rb") as src:
                shutil.copyfileobj(src, f)
    tmp.replace(out / REJECTS)
    done = dataclasses.replace(manifest, complete=True, runs=manifest.runs + (run,))
    done.save(out)
    return done
