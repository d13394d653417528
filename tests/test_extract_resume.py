"""Kill ``conflict-ie extract`` (SIGKILL, no chance to clean up) mid-run, twice; the resumed run's
tables equal an uninterrupted run's, and no row is lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from conflict_ie.cli import main
from extract_data import articles, write_jsonl
from test_extract import assert_same_tables, tables

SHARD = 6


def committed(out) -> int:
    try:
        return len(json.loads((out / "_manifest.json").read_text())["done"])
    except (OSError, ValueError, KeyError):  # not written yet
        return 0


def start(args) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.Popen([sys.executable, "-m", "conflict_ie.cli", "extract", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_after(proc: subprocess.Popen, out, shards: int, timeout: float = 120.0) -> int:
    """SIGKILL ``proc`` once the manifest lists ``shards`` shards; returns how many it listed then."""
    deadline = time.monotonic() + timeout
    try:
        while committed(out) < shards:
            if proc.poll() is not None:
                raise AssertionError(f"extract ended (rc {proc.returncode}) before {shards} shard(s) were committed: "
                                     + proc.stderr.read().decode(errors="replace")[-2000:])
            if time.monotonic() > deadline:
                raise AssertionError(f"no {shards} committed shard(s) after {timeout:.0f} s")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return committed(out)


def test_killed_twice_then_resumed_equals_an_uninterrupted_run(world, tmp_path):
    run = world[0] / "run"
    rows = articles(130, seed=3, sentences=1)
    inputs = [write_jsonl(tmp_path / "a.jsonl", rows[:80]), write_jsonl(tmp_path / "b.jsonl", rows[80:])]
    total = -(-80 // SHARD) + -(-50 // SHARD)
    args = ["--model", str(run), "--input", *map(str, inputs), "--shard-size", str(SHARD), "--no-progress"]
    killed = tmp_path / "killed"
    at_first = kill_after(start(args + ["--output", str(killed)]), killed, 1)
    at_second = kill_after(start(args + ["--output", str(killed)]), killed, at_first + 2)
    assert 1 <= at_first < at_second < total, "both kills must land mid-run"
    assert main(["extract", *args, "--output", str(killed)]) == 0
    whole = tmp_path / "whole"
    assert main(["extract", *args, "--output", str(whole)]) == 0
    assert_same_tables(killed, whole)
    ids = tables(killed)["articles"].doc_id
    assert sorted(ids) == sorted(r["id"] for r in rows) and ids.is_unique
    assert sorted(p.name for p in (killed / "entities").iterdir()) == [f"part-{i:06d}.parquet" for i in range(total)]
    manifest = json.loads((killed / "_manifest.json").read_text())
    assert manifest["complete"] and len(manifest["runs"]) == 1 and len(manifest["done"]) == total
