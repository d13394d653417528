#!/usr/bin/env python
"""A bounded load test of ``conflict-ie serve``: concurrent clients against a tiny model on 127.0.0.1.

    python scripts/load_test_serve.py                    # 8 clients for 30 s (what make load-test runs)
    python scripts/load_test_serve.py --clients 16 --seconds 60 --model runs/demo

It builds a tiny trained run (entities and relations, a 2-layer 16-dimensional BERT, the
way the tests do; about half a minute) unless ``--model`` names one, starts the server as a
process on a free port of 127.0.0.1, and lets every client post ``{"text"}`` or ``{"texts"}``
requests in a loop until the time is up. It fails (exit 1) on any error or non-200 answer,
on a wrong answer (each text must come back as itself), or when the server's resident
memory grew by more than ``--max-rss-growth-mb`` between a sample after warm-up and one at
the end. It prints p50/p90/p99 latency and the throughput. The server is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]

BODIES = [
    "{Wagner Group|ARMED_GROUP#g} fighters killed {12 villagers|CASUALTY_FIGURE#c=killed} in {Bakhmut|LOCATION#l} "
    "with {drones|WEAPON}.\n--- relations\nc PERPETRATOR g\nc LOCATED_IN l",
    "{Governor Ivan Petrov|OFFICIAL#o} of {Belgorod|LOCATION#l} said {Russian forces|ARMED_GROUP#g} repelled an "
    "attack. Later {two soldiers|CASUALTY_FIGURE#c=captured} were taken.\n--- relations\no AFFILIATED_WITH l\n"
    "g LOCATED_IN l",
    "{Al-Shabaab|ARMED_GROUP#g} militants wounded {three soldiers|CASUALTY_FIGURE#c=injured} near "
    "{Mogadishu|LOCATION#l}. {Somali forces|ARMED_GROUP#h} fought back.\n--- relations\nc PERPETRATOR g\n"
    "c LOCATED_IN l\nh FIGHTS g",
]


def tiny_run(tmp: Path) -> Path:
    """A tiny trained run folder, as the tests' ``world`` fixture makes it."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny import tiny_base_model

    from conflict_ie.cli import main as cli
    from conflict_ie.labelstudio import documents_to_tasks
    from conflict_ie.markup import parse_markup
    from conflict_ie.schema import LabelSchema

    schema = LabelSchema.load("conflict")
    # Distinct texts (a corpus refuses the same article twice), as the tests' fixture makes them.
    bodies = [BODIES[i % 3].replace("\n--- relations", f" It was report {i}.\n--- relations", 1) for i in range(15)]
    docs = [parse_markup(body, schema, doc_id=f"d{i}") for i, body in enumerate(bodies)]
    export = tmp / "export.json"
    export.write_text(json.dumps(documents_to_tasks(docs)))
    base = tiny_base_model(tmp / "base", [d.text for d in docs], hidden=16, layers=2)
    cfg = tmp / "cfg.yaml"
    cfg.write_text(f"""
base_model: {base}
inputs: [{export}]
output_dir: {tmp / 'run'}
split: {{train: 0.6, validation: 0.2, test: 0.2}}
ner: {{max_length: 16, stride: 4, learning_rate: 0.05, epochs: 4, batch_size: 4, logging_steps: 2}}
relations: {{max_length: 48, learning_rate: 0.01, epochs: 2, batch_size: 8, threshold: 0.0}}
""")
    if cli(["train", "--config", str(cfg)]) != 0:
        raise SystemExit("could not train the tiny run")
    return tmp / "run"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


#: A cap on each client's requests besides the time limit, so that no loop is unbounded.
MAX_REQUESTS_PER_CLIENT = 20_000


async def client(n: int, url: str, texts: list[str], until: float, latencies: list, errors: list) -> int:
    import httpx

    rng = random.Random(n)
    done = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= until:
                break
            k = rng.choice([1, 1, 1, 2, 4])  # mostly single texts, some small batches
            sent = [rng.choice(texts) for _ in range(k)]
            body = {"text": sent[0]} if k == 1 else {"texts": sent}
            t0 = time.perf_counter()
            try:
                r = await c.post("/predict", json=body)
            except httpx.HTTPError as exc:
                errors.append(f"client {n}: {type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors.append(f"client {n}: HTTP {r.status_code} {r.text[:200]}")
                continue
            got = [r.json()["text"]] if k == 1 else [p["text"] for p in r.json()["predictions"]]
            if got != sent:
                errors.append(f"client {n}: answers out of order or for other texts")
            done += 1
    return done


async def drive(url: str, clients: int, seconds: float, texts: list[str]):
    latencies: list[float] = []
    errors: list[str] = []
    until = time.monotonic() + seconds
    t0 = time.monotonic()
    counts = await asyncio.gather(*[client(i, url, texts, until, latencies, errors) for i in range(clients)])
    return latencies, errors, sum(counts), time.monotonic() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="run folder (default: build a tiny one)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the first memory sample")
    ap.add_argument("--max-rss-growth-mb", type=float, default=50.0)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))

    with tempfile.TemporaryDirectory(prefix="conflict-ie-load-") as tmp:
        tmp = Path(tmp)
        model = Path(args.model) if args.model else tiny_run(tmp)
        # The bodies' plain text, a text without entities and a long one (several windows).
        texts = [re.sub(r"\|[A-Z_]+(#\w+)?(=\w+)?", "", b.split("\n---")[0]).replace("{", "").replace("}", "")
                 for b in BODIES] + ["Calm returned to the market on Sunday.", "Kyiv " * 200]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(tmp / "serve.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "conflict_ie.cli", "serve", "--model", str(model),
                                 "--port", str(port), "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            import httpx

            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"the server exited with {proc.returncode}: {(tmp / 'serve.log').read_text()}")
                try:
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not become healthy in 120 s")
                time.sleep(0.3)
            asyncio.run(drive(url, args.clients, args.warmup, texts))  # warm-up: caches, allocator pools
            rss_start = rss_mb(proc.pid)
            latencies, errors, requests, elapsed = asyncio.run(drive(url, args.clients, args.seconds, texts))
            rss_end = rss_mb(proc.pid)
            health = httpx.get(url + "/health", timeout=5).json()
        finally:
            stop(proc)
            log.close()
    growth = rss_end - rss_start
    print(f"{args.clients} clients, {elapsed:.1f} s: {requests} requests ok, {len(errors)} errors, "
          f"{requests / elapsed:.1f} requests/s")
    if latencies:
        p50, p90, p99 = (1000 * percentile(latencies, q) for q in (0.5, 0.9, 0.99))
        print(f"latency p50 {p50:.0f} ms, p90 {p90:.0f} ms, "
              f"p99 {1000 * percentile(latencies, 0.99):.0f} ms, max {1000 * max(latencies):.0f} ms")
    print(f"server RSS {rss_start:.0f} MiB after warm-up, {rss_end:.0f} MiB at the end ({growth:+.1f} MiB; "
          f"allowed +{args.max_rss_growth_mb:.0f}); queue at the end: {health['queued_texts']} texts")
    failed = False
    if errors:
        print("errors:\n  " + "\n  ".join(errors[:20]))
        failed = True
    if requests == 0:
        print("no request succeeded")
        failed = True
    if growth > args.max_rss_growth_mb:
        print(f"memory grew by {growth:.1f} MiB")
        failed = True
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
