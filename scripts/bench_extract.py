"""Benchmark ``conflict-ie extract``: articles/s and peak memory, local engine and Ray, against a plain loop.

    .venv/bin/python scripts/bench_extract.py                       # 1,000 and 10,000 articles
    .venv/bin/python scripts/bench_extract.py --sizes 500 --engines plain,local

Every measurement is its own process, started from here, whose process tree (Ray's raylet,
GCS and workers included) is sampled every 0.2 s for its peak memory: RSS summed over the
processes (what the issue asks; it counts shared pages once per process) and PSS (shared pages
split between the processes that share them, so the sum is what the tree really holds).

- ``plain``: ``for text in texts: predictor.predict(text)``, the baseline; the rate counts the
  loop only.
- ``local``, ``ray1``, ``ray2``: ``conflict-ie extract`` (``--engine ray --num-workers 1/2``
  on a private local Ray). The rate counts the prediction phase (the manifest's
  ``predict_s``: for Ray, the whole pipeline, actors' start and model loads included); the
  wall time counts everything (imports, scan, Ray start, tables).

The model: ``--model``, else ``runs/demo`` when it holds a trained model (unless ``--tiny``),
else a tiny run this script trains (seconds) the way the tests do. ``--no-relations`` drops the relation model (the
relation step is most of the time of the tiny run). The output says which model ran.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' tiny model and article generator

PLAIN = """
import json, sys, time
from conflict_ie.predictor import Predictor
texts = [json.loads(line)["text"] for line in open(sys.argv[2], encoding="utf-8")]
p = Predictor.from_pretrained(sys.argv[1], progress=False)
t = time.monotonic()
for text in texts:
    p.predict(text)
print(json.dumps({"predict_s": time.monotonic() - t}))
"""


def find_model(args, work: Path) -> tuple[Path, str]:
    if args.model:
        return Path(args.model), f"{args.model} (given)"
    demo = ROOT / "runs" / "demo"
    if not args.tiny and (demo / "config.json").exists() and any(demo.glob("*.safetensors")):
        return demo, "runs/demo (the demo model)"
    why = "--tiny" if args.tiny else "runs/demo has no model"
    return train_tiny(work), f"a tiny run trained here (BERT, 2 layers, 16 dimensions; {why})"


def train_tiny(work: Path) -> Path:
    from conftest import BODIES  # the tests' annotated articles

    from conflict_ie.cli import main as cli
    from conflict_ie.labelstudio import documents_to_tasks
    from conflict_ie.markup import parse_markup
    from conflict_ie.schema import LabelSchema
    from tiny import tiny_base_model

    schema = LabelSchema.load("conflict")
    docs = [parse_markup(BODIES[i % 3], schema, doc_id=f"d{i}") for i in range(15)]
    export = work / "export.json"
    export.write_text(json.dumps(documents_to_tasks(docs)))
    base = tiny_base_model(work / "base", [d.text for d in docs])
    cfg = work / "cfg.yaml"
    cfg.write_text(f"""
base_model: {base}
inputs: [{export}]
output_dir: {work / 'run'}
split: {{train: 0.6, validation: 0.2, test: 0.2}}
ner: {{max_length: 16, stride: 4, learning_rate: 0.05, epochs: 4, batch_size: 4, logging_steps: 2}}
relations: {{max_length: 48, learning_rate: 0.01, epochs: 2, batch_size: 8, threshold: 0.0}}
""")
    assert cli(["train", "--config", str(cfg)]) == 0
    return work / "run"


def without_relations(model: Path, work: Path) -> Path:
    out = work / "ner-only"
    out.mkdir(exist_ok=True)
    for p in model.iterdir():
        if p.is_file():
            shutil.copy(p, out / p.name)
    return out


def tree_memory(pid: int) -> tuple[int, int]:
    """RSS and PSS (bytes) summed over a process and all its descendants."""
    import psutil

    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0
    rss = pss = 0
    for p in procs:
        try:
            info = p.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return rss, pss


def measure(cmd: list[str], timeout: float) -> dict:
    """Run ``cmd``; its wall time, peak tree RSS/PSS and its standard output."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0, 0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            rss, pss = tree_memory(proc.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise SystemExit(f"timed out after {timeout:.0f} s: {' '.join(cmd)}\n{err[-3000:]}")
    finally:
        done.set()
        sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err[-3000:]}")
    return {"wall_s": time.monotonic() - start, "rss": peak[0], "pss": peak[1], "stdout": out}


def run_engine(engine: str, model: Path, data: Path, out: Path, n: int, timeout: float) -> dict:
    if engine == "plain":
        m = measure([sys.executable, "-c", PLAIN, str(model), str(data)], timeout)
        predict_s = json.loads(m["stdout"].strip().splitlines()[-1])["predict_s"]
    else:
        cmd = [sys.executable, "-m", "conflict_ie.cli", "extract", "--model", str(model), "--input", str(data),
               "--output", str(out), "--overwrite", "--no-progress"]
        if engine.startswith("ray"):
            cmd += ["--engine", "ray", "--num-workers", engine[3:]]
        m = measure(cmd, timeout)
        manifest = json.loads((out / "_manifest.json").read_text())
        assert manifest["complete"] and manifest["runs"][-1]["rows"] == n, "extract did not write every article"
        predict_s = manifest["runs"][-1]["predict_s"]
    return {"engine": engine, "n": n, "wall_s": m["wall_s"], "predict_s": predict_s, "rate": n / predict_s,
            "rss_mib": m["rss"] / 2**20, "pss_mib": m["pss"] / 2**20}


def table(results: list[dict]) -> str:
    base = {r["n"]: r for r in results if r["engine"] == "plain"}
    small = {r["engine"]: r for r in results if r["n"] == min(x["n"] for x in results)}
    lines = ["| engine | articles | wall s | predict s | articles/s | x plain | peak RSS MiB | peak PSS MiB "
             "| PSS vs smallest size |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        ratio = f"{r['rate'] / base[r['n']]['rate']:.2f}" if r["n"] in base else "-"
        growth = f"{r['pss_mib'] / small[r['engine']]['pss_mib']:.2f}" if r["engine"] in small else "-"
        lines.append(f"| {r['engine']} | {r['n']:,} | {r['wall_s']:.1f} | {r['predict_s']:.1f} | {r['rate']:.1f} | "
                     f"{ratio} | {r['rss_mib']:.0f} | {r['pss_mib']:.0f} | {growth} |")
    sizes = sorted({r["n"] for r in results})
    if len(sizes) > 1:
        # The rate between the smallest and largest size: start-up (imports, model loads, Ray) cancels out.
        lo, hi = sizes[0], sizes[-1]
        by = {(r["engine"], r["n"]): r for r in results}
        lines += ["", f"| engine | articles/s from {lo:,} to {hi:,} (start-up cancelled) | x plain |",
                  "|---|---:|---:|"]
        marginal = {}
        for engine in dict.fromkeys(r["engine"] for r in results):
            if (engine, lo) in by and (engine, hi) in by:
                dt = by[(engine, hi)]["predict_s"] - by[(engine, lo)]["predict_s"]
                marginal[engine] = (hi - lo) / dt if dt > 0 else float("nan")
        for engine, rate in marginal.items():
            ratio = f"{rate / marginal['plain']:.2f}" if "plain" in marginal else "-"
            lines.append(f"| {engine} | {rate:.1f} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="a run folder (default: runs/demo, else a tiny run trained here)")
    ap.add_argument("--sizes", default="1000,10000", help="article counts, comma-separated")
    ap.add_argument("--engines", default="plain,local,ray1,ray2", help="plain, local, ray1, ray2 (comma-separated)")
    ap.add_argument("--tiny", action="store_true", help="the tiny run even when runs/demo exists")
    ap.add_argument("--no-relations", action="store_true", help="the entity model only (drop relations/)")
    ap.add_argument("--sentences", type=int, default=1, help="sentences per generated article (default 1)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    from extract_data import articles, write_jsonl

    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    try:
        model, which = find_model(args, work)
        if args.no_relations:
            model, which = without_relations(model, work), which + ", without its relation model"
        print(f"model: {which}", flush=True)
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
        results = []
        for n in (int(x) for x in args.sizes.split(",")):
            data = write_jsonl(work / f"articles-{n}.jsonl", articles(n, seed=11, sentences=args.sentences))
            for engine in args.engines.split(","):
                r = run_engine(engine, model, data, work / f"out-{engine}-{n}", n, args.timeout)
                print(f"  {engine:6} {n:>7,} articles: {r['rate']:8.1f} articles/s, wall {r['wall_s']:6.1f} s, "
                      f"peak RSS {r['rss_mib']:6.0f} MiB, PSS {r['pss_mib']:6.0f} MiB", flush=True)
                results.append(r)
        print(f"load average {os.getloadavg()[0]:.1f} at the end\n")
        print(table(results))
        if args.json:
            Path(args.json).write_text(json.dumps({"model": which, "results": results}, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
