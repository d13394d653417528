"""``conflict-ie extract --engine ray``: the same job on Ray Data, on one machine or a cluster.

The pipeline (Ray 2.51 to 2.63, the ``[distributed]`` extra)::

    from_items(one row per shard)                  the scan's shards: file, row range, byte offset
      -> map_batches(ExtractActor, batch_size=1,   a pool of N predictor actors (1 CPU and --num-gpus
            compute=ActorPoolStrategy(size=N))     each), dealt one shard at a time: read, check, predict
      -> write_parquet(DIR/_ray_results)           one results row per record (no text), Ray write tasks

then the driver turns the results into the same four tables, rejects file and manifest as the
local engine (:func:`conflict_ie.extract_manifest.write_shard`), and deletes ``_ray_results``.

Why shards and not ``ray.data.read_json``: pyarrow's JSON reader stops a whole file at its
first invalid line and infers column types per block (a ``date`` that is sometimes a number
breaks it), and neither it nor ``read_parquet`` says which row a record came from, which the
rejects file and "first occurrence wins" need. The actors read their shards with the local
engine's reader, so the engines cannot disagree on what a bad record is. Rejects are rows with a
``reason`` that pass the predictor untouched; duplicate ids were found by the scan before Ray
starts, so no actor needs to see another's ids.

A Ray run is all or nothing: killed, it starts again from the scan's shards (the manifest lists
no shard until every table is written). Every node keeps one logical CPU free for Ray's write
tasks: with every CPU held by an actor, Ray Data waits forever, so such a ``--num-workers`` is
refused; and the actors must all start within :data:`ACTOR_START_TIMEOUT_S`. A private local
Ray (no ``--ray-address``) gets one CPU more than there are workers, stays on the loopback
interface and uses token authentication (Ray's default, set explicitly so every Ray process
agrees).
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa

from conflict_ie.errors import ConfigError
from conflict_ie.extract_inputs import InputFile, MetaColumn, Scan, Shard, read_shard
from conflict_ie.extract_manifest import (
    RAY_NODES,
    RAY_STAGING,
    REJECT_PIECES,
    Manifest,
    shard_counts,
    write_shard,
)
from conflict_ie.extract_tables import results_schema, write_text_atomic
from conflict_ie.extract_worker import ArticleExtractor

log = logging.getLogger(__name__)
#: How long the actors may take to start (a model load each) before Ray Data gives up with an
#: error, rather than waiting forever for resources the cluster does not have.
ACTOR_START_TIMEOUT_S = 600


def local_ray_environment() -> None:
    """Settings for a private local Ray, made before it starts so its processes inherit them:
    loopback only (Ray otherwise binds to the machine's network address) and token auth."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "token")


def shard_items(found: Scan) -> list[dict[str, str]]:
    """One ``from_items`` row per shard: the shard and the duplicates among its rows, as JSON
    (so each read task carries only its own part of the scan).

    Example:
        >>> s = Scan((), (Shard(0, 0, 0, 2),), (), 2, {"0:1": "a.jsonl line 1"})
        >>> shard_items(s)
        [{'shard': '{"index": 0, "file": 0, "start": 0, "stop": 2, "offset": 0}', 'duplicates': '{"0:1": "a.jsonl line 1"}'}]
    """
    by_shard: dict[tuple[int, int], dict[str, str]] = {}
    starts: dict[int, list[int]] = {}
    for sh in found.shards:
        starts.setdefault(sh.file, []).append(sh.start)
    for key, first in found.duplicates.items():
        file, row = (int(x) for x in key.split(":"))
        start = starts[file][bisect.bisect_right(starts[file], row) - 1]
        by_shard.setdefault((file, start), {})[key] = first
    return [{"shard": json.dumps(asdict(sh)), "duplicates": json.dumps(by_shard.get((sh.file, sh.start), {}))}
            for sh in found.shards]


def read_shards(batch: pa.Table, *, files: list[dict], meta: list[dict], id_field: str,
                text_field: str) -> Iterator[pa.Table]:
    """The record tables of each shard row of ``batch`` (rows of :func:`shard_items`)."""
    inputs = tuple(InputFile(**f) for f in files)
    columns = tuple(MetaColumn(**m) for m in meta)
    for item in batch.to_pylist():
        found = Scan(inputs, (), columns, 0, json.loads(item["duplicates"]))
        yield from read_shard(found, Shard(**json.loads(item["shard"])), id_field=id_field, text_field=text_field)


class ExtractActor(ArticleExtractor):
    """The actor class of ``map_batches``: reads the shards it is given (rows of
    :func:`shard_items`) and yields a results table per read batch, each row carrying the node's
    id (how a test sees that both nodes worked).

    Reading happens in the actor rather than in Ray tasks before it: Ray Data fuses a task map
    into the actor map after it and then bundles 64 one-row shard items into one call, which
    gave one actor all the work. Reading is cheap next to predicting, and a shard per call is
    the unit of work the pool deals out.
    """

    def __init__(self, *, files: list[dict], id_field: str, text_field: str, **options: Any):
        import ray

        super().__init__(**options, node_id=ray.get_runtime_context().get_node_id())
        self.read_options = {"files": files, "meta": [m.__dict__ for m in self.meta], "id_field": id_field,
                             "text_field": text_field}

    def __call__(self, batch: pa.Table) -> Iterator[pa.Table]:
        for records in read_shards(batch, **self.read_options):
            yield super().__call__(records)


def check_resources(num_workers: int, num_gpus: float) -> None:
    """Refuse a worker count that would leave a node without a free CPU, or ask for GPUs
    the cluster does not have: Ray Data would wait for them forever, with no error."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
    cpus = sum(int(n["Resources"]["CPU"]) for n in nodes)
    if num_workers > cpus - len(nodes):
        raise ConfigError(f"--num-workers {num_workers}: the Ray cluster has {cpus} CPU(s) on {len(nodes)} node(s), "
                          f"and each node keeps one free for Ray's write tasks; use at most {max(cpus - len(nodes), 0)}")
    gpus = sum(n["Resources"].get("GPU", 0) for n in nodes)
    if num_gpus and num_workers * num_gpus > gpus:
        raise ConfigError(f"--num-workers {num_workers} x --num-gpus {num_gpus} needs {num_workers * num_gpus} "
                          f"GPU(s); the Ray cluster has {gpus:g}")


def run_ray(out: Path, manifest: Manifest, args, progress: bool, timings: dict[str, Any],
            options: dict[str, Any]) -> Manifest:
    """Run every shard of ``manifest`` through Ray Data with actors made from ``options`` (the
    :class:`ArticleExtractor` arguments); returns the manifest with all shards done (not yet saved
    complete: the caller's ``finish`` does that)."""
    import sys
    import time

    if not args.ray_address and "ray" not in sys.modules:
        local_ray_environment()  # before the import: Ray reads its auth mode when it is imported
    import ray
    import ray.data

    started_here = not ray.is_initialized()
    if started_here:
        if args.ray_address:
            ray.init(address=args.ray_address, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=args.num_workers + 1, include_dashboard=False, logging_level=logging.WARNING)
    try:
        check_resources(args.num_workers, args.num_gpus)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        if not progress:
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        found = manifest.scan
        staging = out / RAY_STAGING
        if staging.exists():
            shutil.rmtree(staging)
        t = time.monotonic()
        items = shard_items(found)
        if items:
            # Start every actor (its model loaded) before any shard is dealt, one shard at a time,
            # so that no actor takes the whole queue while the others load; the wait is bounded.
            ctx.wait_for_min_actors_s = ACTOR_START_TIMEOUT_S
            options = dict(options, files=[asdict(f) for f in found.files], id_field=args.id_field,
                           text_field=args.text_field)
            ds = ray.data.from_items(items, override_num_blocks=len(items))
            # Actor pools are spread over the nodes by Ray Data's own default (SPREAD); passing
            # scheduling_strategy here would go through **ray_remote_args, deprecated for 2.64.
            ds = ds.map_batches(ExtractActor, fn_constructor_kwargs=options, batch_size=1, batch_format="pyarrow",
                                compute=ray.data.ActorPoolStrategy(size=args.num_workers,
                                                                   max_tasks_in_flight_per_actor=1),
                                num_cpus=1, num_gpus=args.num_gpus or None)
            ds.write_parquet(str(staging), min_rows_per_file=found.shards[0].stop - found.shards[0].start)
        timings["predict_s"] = round(time.monotonic() - t, 3)
    finally:
        if started_here:
            ray.shutdown()
    manifest = collect(out, manifest, staging)
    if staging.exists():
        shutil.rmtree(staging)
    return manifest


def collect(out: Path, manifest: Manifest, staging: Path) -> Manifest:
    """Turn the Ray results files into the tables (``part-ray-K`` from results file K), one rejects
    piece in input order, ``_ray_nodes.json`` (rows predicted per node) and per-shard counts.
    One results file is in memory at a time (``write_parquet`` cut them at a shard's rows)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    found = manifest.scan
    schema = results_schema(found.meta)
    sources = [f.path for f in found.files]
    starts: dict[int, list[tuple[int, int]]] = {}
    for s in found.shards:
        starts.setdefault(s.file, []).append((s.start, s.index))
    counts: dict[int, dict[str, Any]] = {}
    nodes: Counter = Counter()
    pieces = []
    for k, path in enumerate(sorted(staging.glob("*.parquet")) if staging.exists() else ()):
        results = pq.read_table(path).select(schema.names).cast(schema)
        stem = f"part-ray-{k:06d}"
        write_shard(out, stem, results, sources, found.meta)
        pieces.append(out / REJECT_PIECES / f"{stem}.jsonl")
        nodes.update(results.column("node_id").to_pylist())
        shard_of = [starts[f][bisect.bisect_right(starts[f], (r, 1 << 62)) - 1][1] for f, r in
                    zip(results.column("file").to_pylist(), results.column("row").to_pylist())]
        idx = pa.array(shard_of, pa.int64())
        for i in set(shard_of):
            counts[i] = add_counts(counts.get(i), shard_counts(results.filter(pc.equal(idx, i))))
    # One rejects piece, in input order like the local engine's (rejects are few; they fit in memory).
    lines = [line for p in pieces for line in p.read_text(encoding="utf-8").splitlines()]
    order = {path: n for n, path in enumerate(sources)}
    lines.sort(key=lambda line: (order[(d := json.loads(line))["source"]], d["row"]))
    for p in pieces:
        p.unlink()
    write_text_atomic("".join(line + "\n" for line in lines), out / REJECT_PIECES / "part-ray.jsonl")
    write_text_atomic(json.dumps({"rows_per_node": dict(sorted(nodes.items()))}, indent=1), out / RAY_NODES)
    empty = shard_counts(schema.empty_table())
    for s in found.shards:
        manifest = manifest.with_done(s.index, counts.get(s.index, empty))
    return manifest


def add_counts(a: dict[str, Any] | None, b: dict[str, Any]) -> dict[str, Any]:
    """Two :func:`shard_counts` added up.

    Example:
        >>> add_counts({"rows": 2, "rejected": {"no_id": 1}}, {"rows": 1, "rejected": {"no_id": 1, "no_text": 1}})
        {'rows': 3, 'rejected': {'no_id': 2, 'no_text': 1}}
    """
    if a is None:
        return b
    out = {}
    for key, value in b.items():
        if key == "rejected":
            merged = dict(a.get(key, {}))
            for reason, n in value.items():
                merged[reason] = merged.get(reason, 0) + n
            out[key] = dict(sorted(merged.items()))
        else:
            out[key] = a.get(key, 0) + value
    return out
