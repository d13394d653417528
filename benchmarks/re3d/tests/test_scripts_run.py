"""The benchmark scripts run end to end against the package, on invented re3d-shaped data and a
tiny random model (seconds, no download): every package call they make is exercised here, so a
change to the package's API that breaks them fails this test rather than the next benchmark run.

Numbers are not checked (a tiny random model scores noise); that each step runs and writes its
results and its page is. About a minute and a half on 2 CPU cores (eight trainings, two
subprocesses), so it is a slow test: ``make test-slow`` and ``.ci/run`` run it.
"""

import json
import sys
from pathlib import Path

import pytest
import yaml

BENCH = Path(__file__).resolve().parents[1]  # benchmarks/re3d
REPO = BENCH.parents[1]
for path in (BENCH, REPO / "tests"):  # the scripts; tests/tiny.py
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench_re3d  # noqa: E402
import tune_re3d  # noqa: E402
from tiny import tiny_base_model  # noqa: E402

ARMIES = ["Red Foxes", "Blue Herons", "Grey Owls", "Green Toads", "White Hares", "Black Crows"]
PLACES = ["Port Alder", "Mill Cross", "Stonebridge", "Ashford", "Elm Hollow", "Kestrel Bay"]
PEOPLE = ["Ana Silva", "Tom Reed", "Lea Marsh", "Ivo Berg", "Nia Cole", "Sam Vale"]


def _invented_part(folder: Path, n_docs: int = 12) -> Path:
    """A re3d part (documents/entities/relations JSON lines) of invented sentences."""
    folder.mkdir(parents=True)
    (folder / "LICENSE").write_text("Invented test text, dedicated to the public domain.", encoding="utf-8")
    docs, ents, rels = [], [], []
    for i in range(n_docs):
        a, b = ARMIES[i % 6], ARMIES[(i + 1) % 6]
        place, person = PLACES[i % 6], PEOPLE[(i + 2) % 6]
        # The day number keeps the texts distinct: a corpus refuses an article given twice.
        text = f"The {a} fought the {b} in {place}. {person} led the {a} there on day {i + 1}."
        doc_id = f"doc{i:02d}"
        docs.append({"_id": doc_id, "title": f"Invented {i}", "text": text, "sourceName": "Test", "sourceUrl": ""})
        at = {}
        for key, value, etype, nth in (("a", a, "Organisation", 0), ("b", b, "Organisation", 0),
                                       ("p", place, "Location", 0), ("q", person, "Person", 0),
                                       ("a2", a, "Organisation", 1)):
            start = -1
            for _ in range(nth + 1):
                start = text.index(value, start + 1)
            at[key] = (start, start + len(value))
            ents.append({"_id": f"{doc_id}-{key}", "documentId": doc_id, "begin": start, "end": start + len(value),
                         "type": etype, "value": value, "confidence": 1.0})
        for k, (src, tgt, rtype) in enumerate((("a", "b", "FightingAgainst"), ("a", "p", "CoLocated"),
                                               ("q", "a2", "InChargeOf"))):
            rels.append({"_id": f"{doc_id}-r{k}", "documentId": doc_id, "sourceBegin": at[src][0],
                         "sourceEnd": at[src][1], "targetBegin": at[tgt][0], "targetEnd": at[tgt][1],
                         "type": rtype, "confidence": 1.0})
    for name, rows in (("documents.json", docs), ("entities.json", ents), ("relations.json", rels)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    """(re3d folder of invented parts, a tiny config derived from the benchmark's, a scratch folder)."""
    tmp = tmp_path_factory.mktemp("re3d-scripts")
    re3d = tmp / "re3d"
    _invented_part(re3d / "invented")
    texts = [json.loads(line)["text"] for line in (re3d / "invented" / "documents.json").read_text().splitlines()]
    base = tiny_base_model(tmp / "base", texts, hidden=16, layers=2)
    config = yaml.safe_load((BENCH / "configs" / "re3d-minilm.yaml").read_text(encoding="utf-8"))
    config.update(base_model=str(base), refit=False)
    config["ner"].update(max_length=24, stride=6, batch_size=4, epochs=2, learning_rate=0.05,
                         early_stopping_patience=2, logging_steps=1)
    config["relations"].update(max_length=48, batch_size=8, epochs=1, learning_rate=0.01)
    cfg = tmp / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(config), encoding="utf-8")
    return re3d, cfg, tmp


@pytest.mark.slow
def test_bench_then_tune_run_and_write_their_pages(tiny_bench, capsys):
    re3d, cfg, tmp = tiny_bench
    out, page = tmp / "bench", tmp / "benchmarks.md"
    assert bench_re3d.main(["--re3d", str(re3d), "--config", str(cfg), "--seeds", "1", "--out", str(out),
                            "--doc", str(page)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [r["seed"] for r in summary] == [1] and "relations" in summary[0]["metrics"]
    text = page.read_text(encoding="utf-8")
    assert "### Entities (test split, whole documents)" in text and "| end to end |" in text
    assert bench_re3d.main(["--re3d", str(re3d), "--config", str(cfg), "--seeds", "1", "--out", str(out),
                            "--doc", str(page), "--page"]) == 0  # the page again, from summary.json alone

    corpus, tuning, doc = out / "corpus", tmp / "tuning", tmp / "tuning.md"
    common = ["--corpus", str(corpus), "--config", str(cfg), "--out", str(tuning), "--doc", str(doc)]
    assert tune_re3d.main([*common, "--only", "Viterbi: label all"]) == 0
    run = tuning / "setting-7"
    assert list(tune_re3d.SETTINGS).index("Viterbi: label all") == 7 and (run / "training_info.json").exists()
    assert tune_re3d.main([*common, "--decoding", str(run)]) == 0
    assert tune_re3d.main([*common, "--ensemble", str(run), str(out / "seed-1")]) == 0
    assert tune_re3d.main([*common, "--train-fraction", "0.5"]) == 0
    first = next(iter(tune_re3d.RELATION_SETTINGS))
    assert tune_re3d.main([*common, "--relations", first]) == 0
    results = json.loads((tuning / "results.json").read_text())
    assert {"Viterbi: label all", "_decoding", "_ensemble", "_learning_curve", "_relations"} <= set(results)
    text = doc.read_text(encoding="utf-8")
    for heading in ("## Decoding", "## Averaging or ensembling seeds", "## Learning curve", "## Relations"):
        assert heading in text
    assert tune_re3d.main([*common, "--page"]) == 0
    capsys.readouterr()
