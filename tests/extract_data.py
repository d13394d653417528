"""Generated news articles for the extract tests and benchmark: JSONL and Parquet archives."""

from __future__ import annotations

import json
import random
from pathlib import Path

GROUPS = ["Wagner Group", "Russian forces", "Al-Shabaab", "Somali forces"]
PLACES = ["Bakhmut", "Belgorod", "Mogadishu", "Kyiv", "Kharkiv"]
FIGURES = ["12 villagers", "two soldiers", "three soldiers", "dozens of civilians", "at least 40 people"]
VERBS = ["killed", "wounded", "captured"]
SOURCES = ["wire", "local", "ngo"]


def article(i: int, rng: random.Random, sentences: int = 3) -> dict:
    """One article: an id, a text of a few sentences about fighting, and metadata (date, source)."""
    parts = []
    for _ in range(sentences):
        parts.append(f"{rng.choice(GROUPS)} fighters {rng.choice(VERBS)} {rng.choice(FIGURES)} in "
                     f"{rng.choice(PLACES)} with drones.")
        if rng.random() < 0.3:
            parts.append(f"Governor Ivan Petrov of {rng.choice(PLACES)} said the attack was repelled.")
    return {"id": f"a{i:06d}", "text": " ".join(parts), "date": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "source": SOURCES[i % len(SOURCES)]}


def articles(n: int, seed: int = 0, start: int = 0, sentences: int = 3) -> list[dict]:
    rng = random.Random(seed)
    return [article(start + i, rng, sentences) for i in range(n)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_shards(folder: Path, n: int, shards: int = 4, *, seed: int = 0, sentences: int = 3) -> list[Path]:
    """``n`` articles in ``shards`` JSONL files ``part-K.jsonl`` under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = articles(n, seed, sentences=sentences)
    per = -(-n // shards)
    return [write_jsonl(folder / f"part-{k}.jsonl", rows[k * per:(k + 1) * per]) for k in range(shards)]
