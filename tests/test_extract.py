"""``conflict-ie extract``: tables, rejects, resuming and refusing, on the tiny trained run."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conflict_ie.cli import main
from conflict_ie.extract_tables import TABLES, table_schema
from extract_data import articles, write_jsonl, write_parquet

SORT = {"entities": ["doc_id", "entity_id"], "relations": ["doc_id", "head_id", "tail_id", "label"],
        "casualties": ["doc_id", "start"], "articles": ["doc_id"]}


def tables(out) -> dict[str, pd.DataFrame]:
    """The four tables as pandas reads them, sorted by their keys (row order is not part of the contract)."""
    return {name: pd.read_parquet(out / name).sort_values(SORT[name]).reset_index(drop=True) for name in TABLES}


def assert_same_tables(a, b) -> None:
    ta, tb = tables(a), tables(b)
    for name in TABLES:
        pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=False, rtol=1e-6)


def extract(run, inputs, out, *extra) -> int:
    return main(["extract", "--model", str(run), "--input", *map(str, inputs), "--output", str(out),
                 "--no-progress", *extra])


@pytest.fixture(scope="module")
def run(world):
    return world[0] / "run"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Two JSONL files of generated articles (metadata: date, source) and one of bad records."""
    d = tmp_path_factory.mktemp("archive")
    rows = articles(24, seed=1, sentences=1)
    a = write_jsonl(d / "a.jsonl", rows[:14])
    b = write_jsonl(d / "b.jsonl", rows[14:])
    bad = d / "bad.jsonl"
    lines = [
        b'{"id": "ok1", "text": "Wagner Group fighters shelled Bakhmut.", "date": "2024-02-01"}',
        b"{not json",
        b'["a", "list"]',
        b'{"id": "nt1", "date": "2024-02-02"}',
        b'{"id": "nt2", "text": "   "}',
        b'{"id": "nt3", "text": 42}',
        b"",  # a blank line: no record, but it keeps its line number
        b'{"id": "u1", "text": "caf\xe9 in Kyiv"}',
        b'{"id": "u2", "text": "\\ud800 Kyiv"}',
        b'{"text": "no id in Kyiv"}',
        b'{"id": "a000001", "text": "A second a000001: a duplicate of a.jsonl line 2."}',
        b'{"id": "ok1", "text": "ok1 again, later in the same file."}',
        b'{"id": 7, "text": "Numeric ids are read as their decimal text.", "source": {"name": "nested"}}',
    ]
    bad.write_bytes(b"\n".join(lines) + b"\n")
    return d, [a, b, bad], rows


def test_tables_hold_what_the_predictor_finds(run, archive, tmp_path):
    from conflict_ie.predictor import Predictor

    _, (a, b, _), rows = archive
    out = tmp_path / "out"
    assert extract(run, [a, b], out, "--shard-size", "5") == 0
    got = tables(out)
    preds = Predictor.from_pretrained(run, progress=False).predict_batch([r["text"] for r in rows])
    want_entities = pd.DataFrame([
        {"doc_id": r["id"], "entity_id": e.id, "label": e.label, "start": e.start, "end": e.end, "text": e.text,
         "score": e.score, "attributes": json.dumps(dict(e.attributes), sort_keys=True)}
        for r, p in zip(rows, preds) for e in p.entities])
    assert len(want_entities) > len(rows), "the tiny run should find entities in every article"
    pd.testing.assert_frame_equal(got["entities"], want_entities.sort_values(SORT["entities"]).reset_index(drop=True),
                                  check_dtype=False)
    want_cas = [(r["id"], c.text, c.count_min, c.location, r["date"], r["source"])
                for r, p in zip(rows, preds) for c in p.casualties]
    assert want_cas, "the tiny run should find casualty records"
    cas = got["casualties"]
    assert sorted(want_cas, key=str) == sorted(
        zip(cas.doc_id, cas.text, cas.count_min.astype("Int64").astype(object).where(cas.count_min.notna(), None),
            cas.location.astype(object).where(cas.location.notna(), None), cas.date, cas.source), key=str)
    assert len(got["relations"]) == sum(len(p.relations) for p in preds) > 0
    assert list(got["articles"].doc_id) == [r["id"] for r in rows]
    assert list(got["articles"].n_entities) == [len(p.entities) for p in preds]
    # Fixed schemas: every shard file has exactly the documented columns and types.
    for name in TABLES:
        files = sorted((out / name).glob("*.parquet"))
        assert len(files) == 5  # 24 rows in shards of 5: 3 of a.jsonl, 2 of b.jsonl
        for f in files:
            assert pq.read_schema(f).remove_metadata() == table_schema(name, _meta(out)), (name, f.name)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["complete"] and [s["stop"] - s["start"] for s in manifest["scan"]["shards"]] == [5, 5, 4, 5, 5]
    assert (out / "rejects.jsonl").read_text() == ""


def test_int8_tables_hold_what_the_int8_predictor_finds(run, archive, tmp_path):
    """``--precision int8`` reaches the Predictor: the tables equal an int8 Predictor's entities."""
    from conflict_ie.predictor import Predictor

    _, (a, _, _), rows = archive
    out = tmp_path / "out"
    assert extract(run, [a], out, "--precision", "int8") == 0
    texts = [r["text"] for r in rows if r["id"] in set(tables(out)["articles"].doc_id)]
    preds = Predictor.from_pretrained(run, progress=False, precision="int8").predict_batch(texts)
    got = tables(out)["entities"]
    assert sorted(zip(got.start, got.end, got.label)) == sorted((e.start, e.end, e.label) for p in preds
                                                                 for e in p.entities)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["job"]["precision"] == "int8" and manifest["job"]["int8_weights"] == "per-channel"


def test_an_int8_table_of_the_per_tensor_scheme_is_not_resumed(run, archive, tmp_path, capsys):
    """A manifest from before int8 went per channel has no ``int8_weights``: at int8 it was per tensor,
    and a resumed run would mix the two schemes' rows in one table. At fp32 nothing changed."""
    _, (a, _, _), _ = archive
    for precision, expected in (("int8", 2), ("fp32", 0)):
        out = tmp_path / precision
        assert extract(run, [a], out, "--precision", precision) == 0
        manifest = json.loads((out / "_manifest.json").read_text())
        del manifest["job"]["int8_weights"]  # as the older version wrote it
        manifest["complete"] = False
        (out / "_manifest.json").write_text(json.dumps(manifest))
        capsys.readouterr()
        assert extract(run, [a], out, "--precision", precision) == expected
        if expected:
            assert "int8_weights (per-tensor -> per-channel)" in capsys.readouterr().err


def _meta(out):
    from conflict_ie.extract_manifest import load_manifest

    return load_manifest(out).scan.meta


def test_bad_records_are_counted_and_written_to_rejects(run, archive, tmp_path, capsys):
    _, (a, _, bad), _ = archive
    out = tmp_path / "out"
    assert extract(run, [a, bad], out) == 0
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    got = [(r["line"], r["id"], r["reason"]) for r in rejects]
    assert got == [(2, None, "invalid_json"), (3, None, "invalid_json"), (4, "nt1", "no_text"),
                   (5, "nt2", "no_text"), (6, "nt3", "no_text"), (8, "u1", "not_utf8"), (9, "u2", "not_utf8"),
                   (10, None, "no_id"), (11, "a000001", "duplicate_id"), (12, "ok1", "duplicate_id")]
    assert all(r["source"] == str(bad) and r["row"] == r["line"] - 1 and r["detail"] for r in rejects)
    assert rejects[-2]["detail"] == "the id was first seen at a.jsonl line 2"
    arts = tables(out)["articles"]
    assert set(arts.doc_id) == {r["id"] for r in articles(24, seed=1, sentences=1)[:14]} | {"ok1", "7"}
    assert arts.set_index("doc_id").loc["7", "source"] == '{"name": "nested"}'  # a nested value as JSON text
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("extract: 26 articles read, 16 written, 10 rejected (duplicate_id 2, "
                              "invalid_json 2, no_id 1, no_text 3, not_utf8 2); ")
    assert "articles/s" in summary


def test_resumes_after_an_uncommitted_shard(run, archive, tmp_path, capsys):
    """A run stopped after some shards (manifest cut back, a half-written shard's files left) ends equal."""
    from conflict_ie.extract_manifest import load_manifest

    _, inputs, _ = archive
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert extract(run, inputs, whole, "--shard-size", "4") == 0
    assert extract(run, inputs, cut, "--shard-size", "4") == 0
    m = load_manifest(cut)
    import dataclasses

    dataclasses.replace(m, done={i: c for i, c in m.done.items() if i < 2}, complete=False).save(cut)
    (cut / "rejects.jsonl").unlink()
    (cut / "entities" / ".part-000002.parquet.tmp").write_bytes(b"half a file")
    capsys.readouterr()
    assert extract(run, inputs, cut, "--shard-size", "4", "--batch-size", "3") == 0
    err = capsys.readouterr().err
    assert f"resuming {cut}: 2 of {len(m.scan.shards)} shards done" in err
    assert not list(cut.rglob(".*.tmp"))
    assert_same_tables(whole, cut)
    assert (cut / "rejects.jsonl").read_text() == (whole / "rejects.jsonl").read_text() != ""
    assert load_manifest(cut).totals() == load_manifest(whole).totals()


def test_other_arguments_are_refused_unless_overwrite(run, archive, tmp_path, capsys):
    _, (a, b, _), _ = archive
    out = tmp_path / "out"
    assert extract(run, [a], out) == 0
    capsys.readouterr()
    assert extract(run, [a], out) == 0  # the same job again: nothing to do
    assert "nothing to do" in capsys.readouterr().err
    assert extract(run, [a, b], out) == 2
    assert "other arguments: inputs (1 -> 2 files" in capsys.readouterr().err
    assert extract(run, [a], out, "--threshold", "0.5") == 2
    assert "threshold (0.0 -> 0.5)" in capsys.readouterr().err
    assert extract(run, [a], out, "--precision", "int8") == 2  # a table must not mix fp32 and int8 rows
    assert "precision (fp32 -> int8)" in capsys.readouterr().err
    other = tmp_path / "other-run"
    shutil.copytree(run, other, ignore=shutil.ignore_patterns("checkpoints"))
    assert extract(other, [a], out) == 2
    assert "model (" in capsys.readouterr().err
    assert extract(run, [a, b], out, "--overwrite") == 0
    assert len(tables(out)["articles"]) == 24
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert extract(run, [a], foreign) == 2
    assert "not an extract output" in capsys.readouterr().err
    assert extract(run, [a], foreign, "--overwrite") == 0 and (foreign / "notes.txt").read_text() == "mine"


def test_parquet_inputs_keep_their_metadata_types(run, tmp_path):
    rows = [dict(r, day=dt.date(2024, 3, 1 + i), seen=dt.datetime(2024, 3, 1, i, tzinfo=dt.timezone.utc),
                 n_words=len(r["text"].split())) for i, r in enumerate(articles(6, seed=2, sentences=1))]
    folder = tmp_path / "pq"
    folder.mkdir()
    write_parquet(folder / "x.parquet", rows[:3])
    write_parquet(folder / "y.parquet", rows[3:])
    (folder / "_hidden.parquet").write_bytes(b"not read: a name starting with _")
    out = tmp_path / "out"
    assert extract(run, [folder], out) == 0
    arts = pq.read_table(out / "articles")
    assert arts.schema.field("day").type == pa.date32()
    assert arts.schema.field("seen").type == pa.timestamp("us", tz="UTC")
    assert arts.schema.field("n_words").type == pa.int64()
    assert sorted(arts.column("day").to_pylist()) == [r["day"] for r in rows]
    glob_out = tmp_path / "glob"
    # A glob is the user's own choice of files: it reads _hidden.parquet too, and stops at it.
    assert extract(run, [str(folder / "*.parquet")], glob_out) == 2
    assert extract(run, [str(folder / "[xy].parquet")], glob_out) == 0
    assert_same_tables(out, glob_out)


def test_parquet_binary_texts_are_decoded_or_rejected(run, tmp_path):
    table = pa.table({"id": ["ok", "bad"], "text": pa.array([b"Fighters shelled Kyiv.", b"caf\xe9"], pa.binary())})
    pq.write_table(table, tmp_path / "b.parquet")
    assert extract(run, [tmp_path / "b.parquet"], tmp_path / "out") == 0
    (reject,) = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert (reject["id"], reject["row"], reject["reason"], "line" in reject) == ("bad", 1, "not_utf8", False)
    assert list(tables(tmp_path / "out")["articles"].doc_id) == ["ok"]


def test_input_errors_stop_before_the_model_loads(run, tmp_path, capsys, monkeypatch):
    import conflict_ie.predictor as predictor

    def no_load(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(predictor.Predictor, "from_pretrained", no_load)
    write_parquet(tmp_path / "t.parquet", [{"id": "1", "body": "Kyiv"}])
    assert extract(run, [tmp_path / "t.parquet"], tmp_path / "o1") == 2
    assert "has no 'text' column" in capsys.readouterr().err
    assert extract(run, [tmp_path / "missing.jsonl"], tmp_path / "o2") == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert extract(run, [str(tmp_path / "*.jsonl")], tmp_path / "o3") == 2
    assert "matches no" in capsys.readouterr().err
    assert extract(run, [tmp_path / "t.parquet"], tmp_path / "o4", "--num-workers", "2") == 2
    assert "options of --engine ray" in capsys.readouterr().err
    assert extract(tmp_path, [tmp_path / "t.parquet"], tmp_path / "o5") == 2
    assert "holds no model" in capsys.readouterr().err
    (tmp_path / "in").mkdir()
    write_parquet(tmp_path / "in" / "t.parquet", [{"id": "1", "text": "Kyiv"}])
    assert extract(run, [tmp_path / "in"], tmp_path / "in" / "events") == 2
    assert "is inside the input folder" in capsys.readouterr().err
    assert extract(run, [tmp_path / "t.parquet"], tmp_path / "o7", "--precision", "bf16", "--backend",
                   "onnxruntime") == 2
    assert "torch/fp32" in capsys.readouterr().err  # the error names the supported choices
    assert extract(run, [tmp_path / "t.parquet"], tmp_path / "o8", "--precision", "int8", "--dtype", "float32") == 2
    assert "--dtype float32 applies to --precision fp32 --backend torch only" in capsys.readouterr().err
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert extract(run, [tmp_path / "t.parquet"], tmp_path / "o6", "--engine", "ray") == 2
    assert "conflict-ie[distributed]" in capsys.readouterr().err


def test_an_empty_archive_gives_empty_tables_with_their_columns(run, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    out = tmp_path / "out"
    assert extract(run, [empty], out) == 0
    for name in TABLES:
        table = pq.read_table(out / name)
        assert table.num_rows == 0 and table.schema.names == table_schema(name).names
    assert "extract: 0 articles read, 0 written, 0 rejected" in capsys.readouterr().out
