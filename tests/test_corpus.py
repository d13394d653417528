import subprocess
import sys

import datasets
import pytest

from conflict_ie.corpus import SplitSpec, build_corpus, documents_of, load_corpus, save_corpus, split_documents
from conflict_ie.documents import Document, Provenance
from conflict_ie.errors import InputError
from factories import good_task, write


def task(i):
    """good_task(i) with a text of its own (the regions are at the start, so their offsets hold)."""
    t = good_task(i)
    t["data"]["text"] += f" Report {i}."
    return t


def docs_from(n, schema):
    from conflict_ie.labelstudio import read_labelstudio
    return read_labelstudio([task(i) for i in range(1, n + 1)], schema).documents


def test_features_and_round_trip(tmp_path, schema):
    docs = docs_from(10, schema)
    corpus = build_corpus(split_documents(docs, SplitSpec()), schema)
    feats = corpus["train"].features
    assert isinstance(feats["spans"].feature["label"], datasets.ClassLabel)
    assert feats["spans"].feature["label"].names == list(schema.entity_labels)
    assert feats["relations"].feature["label"].names == list(schema.relation_labels)
    save_corpus(corpus, schema, tmp_path / "c")
    loaded, s2 = load_corpus(tmp_path / "c")
    assert s2 == schema
    back = {d.id: d for name in loaded for d in documents_of(loaded[name], schema)}
    assert len(docs) == 10 and set(back) == {d.id for d in docs}
    assert all(len(d.spans) == 4 and len(d.relations) == 2 for d in docs)
    for d in docs:
        assert back[d.id].spans == d.spans and back[d.id].relations == d.relations
        assert back[d.id].provenance.fields == d.provenance.fields
    card = (tmp_path / "c" / "README.md").read_text()
    assert "| documents | 8 | 1 | 1 |" in card and "| CASUALTY_FIGURE | 8 | 1 | 1 |" in card


def test_splits_are_by_document_and_reproducible(tmp_path, schema):
    docs = docs_from(20, schema)
    a = split_documents(docs, SplitSpec(0.7, 0.15, 0.15, seed=3))
    b = split_documents(list(reversed(docs)), SplitSpec(0.7, 0.15, 0.15, seed=3))
    assert {k: [d.id for d in v] for k, v in a.items()} == {k: [d.id for d in v] for k, v in b.items()}
    assert sorted(d.id for v in a.values() for d in v) == sorted(d.id for d in docs)  # each document once
    assert [len(a[k]) for k in ("train", "validation", "test")] == [14, 3, 3]
    save_corpus(build_corpus(a, schema), schema, tmp_path / "x")
    save_corpus(build_corpus(b, schema), schema, tmp_path / "y")

    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    # Every file, byte for byte (dircmp compares only files present on both sides, and shallowly).
    x, y = files(tmp_path / "x"), files(tmp_path / "y")
    assert {p.parts[0] for p in x} >= {"train", "validation", "test"}
    assert x.keys() == y.keys() and all(x[p] == y[p] for p in x)


def test_split_by_meta_field(schema):
    docs = [Document(str(i), "x", provenance=Provenance(fields={"meta": {"split": s}}))
            for i, s in enumerate(["train", "test", "train", "validation"])]
    out = split_documents(docs, SplitSpec(by_field="split"))
    assert [d.id for d in out["test"]] == ["1"]
    bad = [Document("9", "x", provenance=Provenance(fields={"meta": {"split": "dev"}}))]
    with pytest.raises(InputError, match="task 9: split field 'split' is 'dev'"):
        split_documents(bad, SplitSpec(by_field="split"))


def test_bad_ratios():
    from conflict_ie.errors import ConfigError
    with pytest.raises(ConfigError):
        SplitSpec(0.5, 0.5, 0.5)


def test_cli_named_splits(tmp_path, schema):
    a = write(tmp_path, [task(1), task(2)], "a.json")
    conll = tmp_path / "b.txt"
    conll.write_text("Kyiv B-LOCATION\nburns O\n")
    out = subprocess.run([sys.executable, "-m", "conflict_ie.cli", "corpus", "build", "--input", f"train={a}",
                          "--conll", f"test={conll}", "--out", str(tmp_path / "c")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    corpus, _ = load_corpus(tmp_path / "c")
    assert (len(corpus["train"]), len(corpus["validation"]), len(corpus["test"])) == (2, 0, 1)
