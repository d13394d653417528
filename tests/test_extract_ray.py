"""``extract --engine ray`` on a two-node Ray cluster on this machine (``make test-distributed``).

The cluster (``ray.cluster_utils.Cluster``: two raylets, 2 logical CPUs each, so one actor per
node leaves a CPU for Ray's write tasks) runs in this process; the extract is a separate driver
process, so every wait has a bound: the node wait, and the subprocess's timeout. Ray stays on
the loopback interface and its auth mode is set explicitly (both must be in the environment
before ``ray`` is imported: Ray reads them at import, and every Ray process inherits them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback: Ray otherwise binds to eth0's address
os.environ["RAY_AUTH_MODE"] = "disabled"  # a throwaway loopback cluster; every process must agree
ray = pytest.importorskip("ray")

from conflict_ie.cli import main  # noqa: E402
from extract_data import articles, write_jsonl  # noqa: E402
from test_extract import assert_same_tables, tables  # noqa: E402

pytestmark = pytest.mark.distributed


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 2, "include_dashboard": False})
    try:
        c.add_node(num_cpus=2)
        c.wait_for_nodes(timeout=90)
        yield c
    finally:
        c.shutdown()


def ner_only(run, tmp_path):
    """The tiny run without its relation model: 10x faster, so thousands of articles fit the time."""
    out = tmp_path / "ner-run"
    out.mkdir()
    for p in run.iterdir():
        if p.is_file():
            shutil.copy(p, out / p.name)
    return out


def ray_extract(args, timeout=100) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, "-m", "conflict_ie.cli", "extract", "--engine", "ray", *args],
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def test_two_nodes_give_every_id_once_and_the_local_tables(world, cluster, tmp_path):
    started = time.monotonic()
    model = ner_only(world[0] / "run", tmp_path)
    rows = articles(3000, seed=5, sentences=1)
    inputs = [write_jsonl(tmp_path / f"shard-{k}.jsonl", rows[k * 750:(k + 1) * 750]) for k in range(4)]
    with open(inputs[3], "a", encoding="utf-8") as f:  # bad records: routed to rejects, the same on both engines
        f.write('{"id": "a000001", "text": "a duplicate of shard-0 line 2"}\n{oops\n{"id": "e1", "text": ""}\n')
    args = ["--model", str(model), "--input", *map(str, inputs), "--shard-size", "500", "--no-progress"]

    ray_out = tmp_path / "ray"
    proc = ray_extract(args + ["--output", str(ray_out), "--ray-address", cluster.address, "--num-workers", "2"])
    assert "extract: 3003 articles read, 3000 written, 3 rejected (duplicate_id 1, invalid_json 1, no_text 1)" \
        in proc.stdout
    local_out = tmp_path / "local"
    assert main(["extract", *args, "--output", str(local_out)]) == 0

    arts = tables(ray_out)["articles"]
    assert arts.doc_id.is_unique and sorted(arts.doc_id) == sorted(r["id"] for r in rows)
    assert_same_tables(ray_out, local_out)
    assert (ray_out / "rejects.jsonl").read_text() == (local_out / "rejects.jsonl").read_text()
    # Each actor writes its node's id into every results row it makes; the driver counts them per node.
    per_node = json.loads((ray_out / "_ray_nodes.json").read_text())["rows_per_node"]
    nodes = {n.node_id for n in cluster.list_all_nodes()}
    assert set(per_node) == nodes and len(nodes) == 2 and all(n > 0 for n in per_node.values()), per_node
    assert sum(per_node.values()) == 3003
    assert not (ray_out / "_ray_results").exists()
    assert time.monotonic() - started < 120


def test_relations_casualties_and_metadata_agree_with_the_local_engine(world, cluster, tmp_path):
    """The full tiny run (relations, casualty records with date and source) on a small archive."""
    rows = articles(40, seed=6, sentences=1)
    inputs = [write_jsonl(tmp_path / "a.jsonl", rows[:25]), write_jsonl(tmp_path / "b.jsonl", rows[25:])]
    args = ["--model", str(world[0] / "run"), "--input", *map(str, inputs), "--no-progress"]
    ray_extract(args + ["--output", str(tmp_path / "ray"), "--ray-address", cluster.address, "--num-workers", "2"])
    assert main(["extract", *args, "--output", str(tmp_path / "local")]) == 0
    assert_same_tables(tmp_path / "ray", tmp_path / "local")
    cas = tables(tmp_path / "ray")["casualties"]
    assert len(cas) > 0 and {"date", "source"} <= set(cas.columns)


def test_a_worker_count_that_would_hang_is_refused(world, cluster, tmp_path):
    inputs = [write_jsonl(tmp_path / "a.jsonl", articles(3))]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "conflict_ie.cli", "extract", "--engine", "ray", "--model",
                           str(world[0] / "run"), "--input", str(inputs[0]), "--output", str(tmp_path / "o"),
                           "--ray-address", cluster.address, "--num-workers", "3"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "each node keeps one free for Ray's write tasks; use at most 2" in proc.stderr
