"""``conflict-ie extract``: event tables from an archive of articles, resumable, in bounded memory.

    conflict-ie extract --model runs/demo --input archive/*.jsonl --output events/

reads JSONL and Parquet inputs (:mod:`conflict_ie.extract_inputs`), predicts every usable
article and writes the ``entities``, ``relations``, ``casualties`` and ``articles`` tables
(:mod:`conflict_ie.extract_tables`) under the output folder, one Parquet file per shard, plus
``rejects.jsonl`` (one line per record that could not be used, with the reason and where it
was) and ``_manifest.json`` (:mod:`conflict_ie.extract_manifest`).

The local engine works through the shards in order and commits each one (its files, then the
manifest) before the next; killed at any point and run again with the same arguments, it
deletes the uncommitted shard's files and carries on, so the tables equal an uninterrupted
run's. ``--engine ray`` runs the same steps on Ray Data (:mod:`conflict_ie.extract_ray`).
See docs/extract.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

from conflict_ie.errors import ConfigError, InputError

# The extract_* modules (pyarrow: most of a second) are imported where they are used, so that
# ``cli.build_parser`` can import this module for its arguments and ``conflict-ie --help`` stays fast.

#: Rows per shard: a killed run loses at most one shard's work; 5,000 short articles are a
#: minute or two on a CPU and seconds on a GPU, and a million articles make 200 files a table.
SHARD_SIZE = 5000


def add_extract_arguments(sp: argparse.ArgumentParser) -> None:
    """The options of ``conflict-ie extract`` (``cli.build_parser`` registers the subcommand).

    Example:
        >>> p = argparse.ArgumentParser(); add_extract_arguments(p)
        >>> p.parse_args(["--model", "m", "--input", "a.jsonl", "b.parquet", "--output", "o"]).input
        ['a.jsonl', 'b.parquet']
    """
    sp.add_argument("--model", required=True, help="a run folder, checkpoint folder or hub id")
    sp.add_argument("--input", required=True, nargs="+", action="extend", metavar="PATH",
                    help=".jsonl/.ndjson/.parquet files, folders of them, or globs (quote them); repeatable")
    sp.add_argument("--output", required=True, metavar="DIR", help="folder for the tables, rejects and manifest")
    sp.add_argument("--id-field", default="id", help="field holding each article's id (default id)")
    sp.add_argument("--text-field", default="text", help="field holding each article's text (default text)")
    sp.add_argument("--engine", default="local", choices=["local", "ray"], help="local (default) or ray")
    sp.add_argument("--ray-address", default=None, metavar="ADDR",
                    help="a running Ray cluster (e.g. ray://head:10001 or auto); default: a private local one")
    sp.add_argument("--num-workers", type=int, default=1, metavar="N", help="Ray predictor actors (default 1)")
    sp.add_argument("--num-gpus", type=float, default=0.0, metavar="G",
                    help="GPUs per Ray actor (default 0; 1 puts one actor on each GPU)")
    sp.add_argument("--device", default="auto", help="auto (default: a GPU when there is one), cpu, cuda, cuda:1")
    sp.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                    help="auto: bf16 autocast on a GPU that has it, float32 on a CPU")
    from conflict_ie.runtime import add_runtime_arguments

    add_runtime_arguments(sp)
    sp.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default 8; more on a GPU)")
    sp.add_argument("--shard-size", type=int, default=SHARD_SIZE, help=f"rows per shard (default {SHARD_SIZE})")
    sp.add_argument("--threshold", type=float, default=0.0, help="drop entities scored below this")
    sp.add_argument("--relation-threshold", type=float, default=None, help="override the run's relation threshold")
    sp.add_argument("--overwrite", action="store_true",
                    help="start again: remove an earlier extract's files from DIR (nothing else)")
    sp.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="progress bars (default: when standard error is a terminal)")


def _check_args(args) -> None:
    for name in ("batch_size", "shard_size", "num_workers"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("threshold", "relation_threshold"):
        value = getattr(args, name)
        if value is not None and not 0.0 <= value <= 1.0:
            raise ConfigError(f"--{name.replace('_', '-')} is a score in [0, 1], got {value}")
    from conflict_ie.runtime import check_runtime

    check_runtime(args.precision, args.backend)
    if args.dtype != "auto" and (args.precision, args.backend) != ("fp32", "torch"):
        # --dtype is the GPU autocast of the fp32 torch model; the other runtimes set their own types.
        raise ConfigError(f"--dtype {args.dtype} applies to --precision fp32 --backend torch only; "
                          "leave --dtype at auto with another precision or backend")
    if args.num_gpus < 0:
        raise ConfigError(f"--num-gpus must be >= 0, got {args.num_gpus}")
    if args.engine == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("--engine ray needs Ray Data: pip install 'conflict-ie[distributed]'")
    if args.engine == "local" and (args.ray_address or args.num_workers != 1 or args.num_gpus):
        raise ConfigError("--ray-address, --num-workers and --num-gpus are options of --engine ray")


def model_folder(model: str) -> Path:
    """The model's folder (a hub id resolved through the local cache), checked to hold a model."""
    path = Path(model)
    if not path.exists():
        from conflict_ie.predictor import resolve_model_dir

        path = resolve_model_dir(model)
    if not (path / "config.json").exists() or not any(path.glob("*.safetensors")):
        raise InputError(f"{path} holds no model (config.json and safetensors weights): give a run folder")
    return path


def cmd_extract(args) -> int:
    """Run ``conflict-ie extract``; see the module docstring."""
    from conflict_ie.extract_inputs import expand_inputs, scan
    from conflict_ie.extract_manifest import REJECTS, Job, Manifest, finish, model_fingerprint, open_output
    from conflict_ie.extract_manifest import remove_uncommitted
    from conflict_ie.extract_tables import RESERVED
    from conflict_ie.runtime import INT8_WEIGHTS

    started = time.monotonic()
    _check_args(args)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    # Everything that can be wrong with the arguments is found before the scan and the model load.
    files = expand_inputs(args.input)
    model = model_folder(args.model)
    job = Job(model_fingerprint(model), [f.stat_key() for f in files], args.id_field, args.text_field,
              args.shard_size, float(args.threshold),
              None if args.relation_threshold is None else float(args.relation_threshold), args.engine,
              args.precision, args.backend, INT8_WEIGHTS if args.precision == "int8" else "none")
    out = Path(args.output)
    for value in args.input:
        folder = Path(value)
        if folder.is_dir() and out.resolve().is_relative_to(folder.resolve()):
            raise ConfigError(f"--output {out} is inside the input folder {value}: the next run would read its "
                              "tables and rejects as input; put the output elsewhere")
    manifest = open_output(out, job, overwrite=args.overwrite)
    if manifest is not None and manifest.complete:
        print(f"nothing to do: {out} already holds this extract", file=sys.stderr)
        print(summary_line(manifest.totals(), time.monotonic() - started, 0))
        return 0
    timings: dict[str, Any] = {"engine": args.engine}
    if manifest is None:
        out.mkdir(parents=True, exist_ok=True)
        t = time.monotonic()
        found = scan(files, id_field=args.id_field, text_field=args.text_field, shard_size=args.shard_size,
                     output_columns=RESERVED, workdir=str(out), progress=progress)
        timings["scan_s"] = round(time.monotonic() - t, 3)
        manifest = Manifest(job, found)
        manifest.save(out)
    else:
        removed = remove_uncommitted(out, manifest)
        print(f"resuming {out}: {len(manifest.done)} of {len(manifest.scan.shards)} shards done"
              + (f", {removed} uncommitted file(s) removed" if removed else ""), file=sys.stderr)
    before = manifest.totals()["rows"]
    if args.engine == "local":
        manifest = run_local(out, manifest, args, progress, timings)
    else:
        from conflict_ie.extract_ray import run_ray

        manifest = run_ray(out, manifest, args, progress, timings, extractor_options(args, manifest))
    seconds = time.monotonic() - started
    rows = manifest.totals()["rows"] - before
    timings.update(seconds=round(seconds, 3), rows=rows)
    manifest = finish(out, manifest, timings)
    print(summary_line(manifest.totals(), seconds, rows) + f" -> {out} (rejects: {out / REJECTS})")
    return 0


def extractor_options(args, manifest) -> dict[str, Any]:
    """Keyword arguments of :class:`~conflict_ie.extract_worker.ArticleExtractor` (plain data, for Ray)."""
    return {"model": manifest.job.model["path"], "meta": [m.__dict__ for m in manifest.scan.meta],
            "device": args.device, "dtype": args.dtype, "threshold": args.threshold,
            "relation_threshold": args.relation_threshold, "batch_size": args.batch_size,
            "precision": args.precision, "backend": args.backend}


def run_local(out: Path, manifest, args, progress: bool, timings: dict[str, Any]):
    """Predict the shards the manifest does not list, in order, committing each; returns the manifest."""
    import pyarrow as pa
    from tqdm.auto import tqdm

    from conflict_ie.extract_inputs import read_shard
    from conflict_ie.extract_manifest import part_name, write_shard
    from conflict_ie.extract_tables import results_schema
    from conflict_ie.extract_worker import ArticleExtractor

    found = manifest.scan
    todo = [s for s in found.shards if s.index not in manifest.done]
    if not todo:
        return manifest
    t = time.monotonic()
    extractor = ArticleExtractor(**extractor_options(args, manifest))
    timings["load_s"] = round(time.monotonic() - t, 3)
    t = time.monotonic()
    sources = [f.path for f in found.files]
    with tqdm(total=found.rows, initial=manifest.totals()["rows"], unit="article", desc="extract",
              disable=not progress, smoothing=0.05, dynamic_ncols=True) as bar:
        for shard in todo:
            parts = []
            for records in read_shard(found, shard, id_field=args.id_field, text_field=args.text_field):
                parts.append(extractor(records))
                bar.update(records.num_rows)
            results = pa.concat_tables(parts) if parts else results_schema(found.meta).empty_table()
            counts = write_shard(out, part_name(shard.index, ""), results, sources, found.meta)
            # The shard exists once the manifest says so: files first, then the manifest.
            manifest = manifest.with_done(shard.index, counts)
            manifest.save(out)
    timings["predict_s"] = round(time.monotonic() - t, 3)
    return manifest


def summary_line(totals: dict[str, Any], seconds: float, rows: int) -> str:
    """The line a run ends with: the job's counts, this run's time and rate.

    Example:
        >>> summary_line({"rows": 10, "written": 8, "rejected": {"no_text": 2}, "entities": 30, "relations": 4,
        ...               "casualties": 1}, 2.0, 10)
        'extract: 10 articles read, 8 written, 2 rejected (no_text 2); 30 entities, 4 relations, 1 casualty records; 2.0 s, 5.0 articles/s'
    """
    rejected = sum(totals["rejected"].values())
    reasons = ", ".join(f"{k} {v}" for k, v in totals["rejected"].items())
    return (f"extract: {totals['rows']} articles read, {totals['written']} written, {rejected} rejected"
            + (f" ({reasons})" if reasons else "")
            + f"; {totals['entities']} entities, {totals['relations']} relations, {totals['casualties']} casualty "
            f"records; {seconds:.1f} s, {rows / seconds if seconds > 0 else 0.0:.1f} articles/s")
