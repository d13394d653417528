"""The re3d benchmark's scripts: convert_re3d.py (re3d -> Label Studio), bench_re3d.py, tune_re3d.py.

The rules are checked on a tiny fake part written here with invented text (runs everywhere);
a two-document conversion of the real corpus runs only where ../shared/data/re3d exists beside
the repository, and skips otherwise. No re3d text is stored in this file: it is read from
../shared at run time. The scripts are imported by name, from benchmarks/re3d put on sys.path here
(not in a conftest.py: a second rootless ``conftest`` module would clash with tests/conftest.py).
"""

import json
import os
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1]  # benchmarks/re3d
REPO = BENCH.parents[1]
RE3D_DATA = REPO.parent / "shared" / "data" / "re3d"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # as tests/conftest.py does: never reach the Hub from tests
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import bench_re3d  # noqa: E402
import convert_re3d as conv  # noqa: E402
import tune_re3d  # noqa: E402
from conflict_ie.labelstudio import read_labelstudio  # noqa: E402
from conflict_ie.schema import LabelSchema  # noqa: E402


@pytest.fixture
def re3d_data() -> Path:
    """The re3d parts in the read-only shared folder beside the repository (never copied here)."""
    if not RE3D_DATA.is_dir():
        pytest.skip(f"{RE3D_DATA} is absent: this test reads the real re3d corpus from the shared folder "
                    "beside the repository")
    return RE3D_DATA


@pytest.fixture(scope="module")
def re3d_schema():
    return LabelSchema.load(conv.DEFAULT_SCHEMA)


def parse_summary(text: str) -> dict:
    """The counts of the printed summary: {'entities': (in, kept, dropped, {reason: n}), 'relations': ...}."""
    out = {}
    for what in ("entities", "relations"):
        m = re.search(rf"^{what}: in=(\d+) kept=(\d+) dropped=(\d+)$", text, re.M)
        assert m, f"no '{what}:' line in the summary:\n{text}"
        reasons = re.search(rf"^  {what} dropped: (.*)$", text, re.M)
        assert reasons, f"no '{what} dropped:' line in the summary:\n{text}"
        by_reason = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", reasons.group(1))}
        out[what] = (int(m[1]), int(m[2]), int(m[3]), by_reason)
    return out


def assert_counts_add_up(summary: dict) -> None:
    for what, (n_in, kept, dropped, by_reason) in summary.items():
        assert n_in == kept + dropped, f"{what}: in={n_in} but kept+dropped={kept + dropped}"
        assert sum(by_reason.values()) == dropped, f"{what}: reasons {by_reason} do not sum to {dropped}"


# ----------------------------------------------------------------------------- fake parts (invented text)
FAKE_TEXT = (
    "The Blue Herons met the Red Foxes in Port Alder on Monday. "
    "Their leader Ana Silva praised the Foxes and the Kestrel. "
    "Later the Herons left and the \u201cIron\u201d Brigade stayed."
)


def _at(value: str, nth: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(nth + 1):
        start = FAKE_TEXT.index(value, start + 1)
    return start, start + len(value)


def _write_part(folder: Path, licence: str, docs, ents, rels) -> Path:
    folder.mkdir(parents=True)
    (folder / "LICENSE").write_text(licence, encoding="utf-8")
    for name, rows in (("documents.json", docs), ("entities.json", ents), ("relations.json", rels)):
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return folder


def _fake_parts(root: Path) -> Path:
    """Two invented parts under ``root``: 'zeta' exercises every rule, 'alpha' the ordering."""
    entities, relations = [], []

    def ent(name, value, etype, conf=1.0, at=None, shift=0):
        begin, end = at if at is not None else _at(value)
        entities.append({"_id": name, "documentId": "z1", "begin": begin + shift, "end": end + shift,
                         "type": etype, "value": value, "confidence": conf})
        return begin + shift, end + shift

    def rel(name, src, tgt, rtype):
        relations.append({"_id": name, "documentId": "z1", "sourceBegin": src[0], "sourceEnd": src[1],
                          "targetBegin": tgt[0], "targetEnd": tgt[1], "type": rtype, "confidence": 1.0,
                          "source": FAKE_TEXT[src[0]:src[1]], "target": FAKE_TEXT[tgt[0]:tgt[1]]})

    a = ent("a", "The Blue Herons", "Organisation")
    b = ent("b", "Blue Herons", "Organisation")  # nested in a: the longer span wins
    c = ent("c", "Red Foxes", "Organisation")
    ent("d", "Red Foxes", "Organisation", conf=0.5)  # duplicate of c
    e = ent("e", "Port Alder", "Location", shift=3)  # offsets 3 chars late: re-anchored
    f = ent("f", "Monday", "Temporal", shift=30)  # too far from the value: unresolvable
    g = ent("g", "Ana Silva ", "Person")  # trailing space: trimmed
    space = _at(" praised")[0]
    ent("h", " ", "Organisation", conf=0.2, at=(space, space + 1))  # white space only
    foxes = _at("Foxes", 1)
    ent("i1", "Foxes", "Organisation", conf=0.0, at=foxes)  # same span, unsupported: loses
    i2 = ent("i2", "Foxes", "Location", conf=1.0, at=foxes)
    ent("j1", "Kestrel", "Vehicle")  # same span, same confidence: TYPE_PRIORITY decides
    j2 = ent("j2", "Kestrel", "Weapon")
    ent("k1", "Herons", "Organisation", at=_at("Herons", 1))
    k2 = ent("k2", "r the Her", "Vehicle", conf=0.0)  # longer, but unsupported: loses
    ent("l", "Zebra", "Animal", at=(0, 3))  # type not in the schema
    ent("m", "the 'Iron' Brigade", "Organisation", at=_at("the \u201cIron\u201d Brigade"))  # quotes differ
    ent("n", "leader", "Person", conf=0.0)  # unsupported but overlapping nothing: kept, and counted

    rel("r1", a, c, "FightingAgainst")  # kept
    rel("r2", c, e, "CoLocated")  # target given with the late offsets: follows the re-anchored span
    rel("r3", b, c, "AlliesOf")  # source lost the overlap
    rel("r4", g, a, "InChargeOf")  # source given with the trailing space: follows the trimmed span
    rel("r5", a, a, "IsSynonymOf")  # self-relation
    rel("r6", a, c, "FightingAgainst")  # duplicate of r1
    rel("r7", _at("Their"), c, "BelongsTo")  # source is no entity
    rel("r8", f, c, "CoLocated")  # source dropped by the offset check
    rel("r9", j2, a, "Likes")  # Weapon -> Organisation is no Likes pair
    rel("r10", a, c, "Hates")  # relation type not in the schema
    rel("r11", a, i2, "CoLocated")  # two types on these offsets: goes to the one that stayed
    rel("r12", k2, a, "BelongsTo")  # source lost the overlap

    _write_part(
        root / "zeta", "Invented test text, dedicated to the public domain.",
        [{"_id": "z1", "title": "Invented", "text": FAKE_TEXT, "sourceName": "Test",
          "sourceUrl": "https://example.org/z"}],
        entities, relations,
    )
    _write_part(
        root / "alpha", "Licensed under the Creative Commons Attribution-ShareAlike 3.0 licence.",
        [{"_id": "d2", "title": "Two", "text": "Second invented text.", "sourceName": "T", "sourceUrl": ""},
         {"_id": "d1", "title": "One", "text": "First invented text.", "sourceName": "T", "sourceUrl": ""}],
        [], [],
    )
    return root


def test_rules_on_a_fake_part(tmp_path, re3d_schema, capsys):
    root = _fake_parts(tmp_path / "re3d")
    out = tmp_path / "export.json"
    assert conv.main([str(root), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    summary = parse_summary(err)
    assert_counts_add_up(summary)
    assert summary["entities"][:3] == (17, 9, 8)
    assert {k: v for k, v in summary["entities"][3].items() if v} == {
        "type_not_in_schema": 1, "unresolvable_offsets": 1, "whitespace_only": 1, "duplicate": 1, "overlap": 4}
    assert "entities fixed and kept: value_matched_after_normalisation=1 reanchored=1 trimmed=1" in err
    for pair in ("Organisation>Organisation=1", "Location>Organisation=1", "Weapon>Vehicle=1",
                 "Organisation>Vehicle=1"):
        assert pair in err
    assert "entities_kept_with_confidence_0=1" in err
    assert summary["relations"][:3] == (12, 4, 8)
    assert {k: v for k, v in summary["relations"][3].items() if v} == {
        "relation_type_not_in_schema": 1, "self_relation": 1, "endpoint_not_an_entity": 1,
        "endpoint_dropped_by_entity_checks": 1, "endpoint_dropped_by_overlap_resolution": 2,
        "type_pair_not_in_schema": 1, "duplicate_relation": 1}
    assert "strict reader: read 3 document(s) from 3 task(s)" in err

    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert [(t["id"], t["meta"]["part"], t["meta"]["re3d_document_id"]) for t in tasks] == [
        (1, "alpha", "d1"), (2, "alpha", "d2"), (3, "zeta", "z1")]
    assert tasks[0]["meta"]["licence"] == "CC BY-SA 3.0" and tasks[2]["meta"]["licence"] == "Public domain"
    assert tasks[2]["data"] == {"text": FAKE_TEXT, "title": "Invented"}
    assert set(tasks[2]["meta"]) == {"source_name", "source_url", "licence", "part", "re3d_document_id"}

    doc = read_labelstudio(out, re3d_schema).documents[2]  # strict
    spans = {s.id: s for s in doc.spans}
    assert [(s.label, doc.span_text(s)) for s in doc.spans] == [
        ("Organisation", "The Blue Herons"), ("Organisation", "Red Foxes"), ("Location", "Port Alder"),
        ("Person", "leader"), ("Person", "Ana Silva"), ("Location", "Foxes"), ("Weapon", "Kestrel"),
        ("Organisation", "Herons"),
        ("Organisation", "the \u201cIron\u201d Brigade")]
    rels = sorted((r.label, doc.span_text(spans[r.head]), doc.span_text(spans[r.tail])) for r in doc.relations)
    assert rels == [("CoLocated", "Red Foxes", "Port Alder"), ("CoLocated", "The Blue Herons", "Foxes"),
                    ("FightingAgainst", "The Blue Herons", "Red Foxes"), ("InChargeOf", "Ana Silva", "The Blue Herons")]


def test_anchor_picks_the_nearest_occurrence():
    text = "east gate, west gate, north gate"
    # Given begin 14: "gate" at 16 is 2 characters away, "gate" at 5 is 9 away: the nearer wins.
    assert conv.anchor(text, 14, 18, "gate") == (16, 20, "reanchored")
    assert conv.anchor(text, 0, 4, "gate", window=3) is None
    assert conv.anchor(text, 0, 9, "east  gate") == (0, 9, "normalised")
    assert conv.trim("  x ", 0, 4) == (2, 3) and conv.trim("   ", 0, 3)[0] == conv.trim("   ", 0, 3)[1]


def test_unknown_licence_is_refused(tmp_path):
    part = _write_part(tmp_path / "p", "All rights reserved.", [{"_id": "x", "text": "t"}], [], [])
    with pytest.raises(SystemExit, match="no LICENSE/ATTRIBUTION naming a known licence"):
        conv.convert_parts([part], LabelSchema.load(conv.DEFAULT_SCHEMA))


# ----------------------------------------------------------------------------- the real corpus (../shared)
def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_two_re3d_documents(tmp_path, re3d_schema, capsys, re3d_data):
    part = re3d_data / "centcom"
    if not part.is_dir():
        pytest.skip(f"{part} is absent: this test reads re3d's centcom part")
    originals = {r["_id"]: r for r in _jsonl(part / "documents.json")[:2]}  # the first two in the file
    ids = sorted(originals)
    entity_lines, relation_lines = _jsonl(part / "entities.json"), _jsonl(part / "relations.json")

    out = tmp_path / "two.json"
    assert conv.main([str(part), "--out", str(out), "--documents", ",".join(ids)]) == 0
    summary = parse_summary(capsys.readouterr().err)
    assert_counts_add_up(summary)
    assert summary["entities"][0] == sum(1 for e in entity_lines if e["documentId"] in originals)
    assert summary["relations"][0] == sum(1 for r in relation_lines if r["documentId"] in originals)

    docs = read_labelstudio(out, re3d_schema).documents  # strict: raises on any bad region or relation
    assert [d.id for d in docs] == ["1", "2"]
    assert [d.provenance.fields["meta"]["re3d_document_id"] for d in docs] == ids
    assert sum(len(d.spans) for d in docs) == summary["entities"][1] > 0
    assert sum(len(d.relations) for d in docs) == summary["relations"][1] > 0

    converted, _ = conv.convert_parts([part], re3d_schema, documents=ids)
    origins = {c.document.id: c.origins for c in converted}
    for doc in docs:
        meta = doc.provenance.fields["meta"]
        rid = meta["re3d_document_id"]
        original = originals[rid]
        assert meta == {"source_name": original["sourceName"], "source_url": original["sourceUrl"],
                        "licence": "Public domain", "part": "centcom", "re3d_document_id": rid}
        assert doc.provenance.fields["data"] == {"title": original["title"]}
        assert doc.text == original["text"]
        for span in doc.spans:
            row = origins[rid][span.id]
            piece = doc.text[span.start:span.end]
            assert piece == original["text"][span.start:span.end]
            assert piece == piece.strip()
            assert row["documentId"] == rid and row["type"] == span.label
            assert conv.normalise(piece) == conv.normalise(row["value"]), (span, row["_id"])
        ids_here = {s.id for s in doc.spans}
        for rel in doc.relations:
            assert rel.head in ids_here and rel.tail in ids_here and rel.head != rel.tail


# ----------------------------------------------------------------------------- sentence-level protocol
def test_sentence_documents_keep_offsets_and_never_cut_an_entity(monkeypatch):
    import conflict_ie.sentences
    from conflict_ie.documents import Document, Relation, Span

    text = "The Blue Herons left. Port Alder fell. Mr. Reed said so. The Red Foxes stayed."
    # A splitter that cuts after "Mr." (as a naive one does; the package's may not): the entity
    # "Mr. Reed" keeps those two sentences together. Fixed cuts keep this a test of the merging alone.
    cuts = [(0, 21), (22, 38), (39, 42), (43, 56), (57, 78)]
    monkeypatch.setattr(conflict_ie.sentences, "sentence_bounds", lambda t: cuts if t == text else [(0, len(t))])
    spans = (Span("a", 4, 15, "Organisation"), Span("b", 22, 32, "Location"), Span("c", 39, 47, "Person"),
             Span("d", 61, 70, "Organisation"))
    doc = Document("9", text, spans, (Relation("a", "b", "CoLocated"), Relation("d", "c", "FightingAgainst")))
    docs, counts = bench_re3d.sentence_documents([doc])
    assert [d.text for d in docs] == ["The Blue Herons left.", "Port Alder fell.", "Mr. Reed said so.",
                                      "The Red Foxes stayed."]
    assert counts["merged"] == 1 and counts["entities_lost"] == 0
    assert counts["relations_across_sentences"] == 2 and not any(d.relations for d in docs)
    got = [(d.id, d.span_text(s), s.label) for d in docs for s in d.spans]
    assert got == [("9-s0", "Blue Herons", "Organisation"), ("9-s1", "Port Alder", "Location"),
                   ("9-s2", "Mr. Reed", "Person"), ("9-s3", "Red Foxes", "Organisation")]


def test_benchmark_page_states_refit_and_compares_runs(tmp_path, re3d_schema):
    """The page from fake run summaries: refit epochs per seed, and another run's line (--compare)."""
    import argparse

    from conflict_ie.corpus import build_corpus, label_counts
    from conflict_ie.documents import Document, Span

    bench = bench_re3d
    doc = Document("1", "Troops left Mosul.", (Span("a", 12, 17, "Location"),))
    ds = build_corpus({"train": [doc], "validation": [doc], "test": [doc]}, re3d_schema)
    prf = {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    per_label = {l: {**prf, "support": 1} for l in re3d_schema.entity_labels}

    def run(seed, f1, refit_epoch=None):
        ner = {m: {"micro": {**prf, "f1": f1}, "per_label": per_label} for m in ("strict", "lenient")}
        rel = {k: {"micro": prf} for k in ("gold_entities", "end_to_end")}
        info = {"refit": {"epoch": refit_epoch, "train_documents": 2}} if refit_epoch else {}
        return {"seed": seed, "seconds": 60.0, "metrics": {"ner": ner, "relations": rel}, "info": info}

    other = tmp_path / "summary-before.json"
    other.write_text(json.dumps([run(1, 0.25), run(2, 0.75)]))
    args = argparse.Namespace(seeds=[1, 2], set=[], unit="document", ratios="0.7/0.15/0.15",
                              config=str(BENCH / "configs/re3d-minilm.yaml"),
                              compare=[(str(other), "the same settings without refit")])
    page = "\n".join(bench._page([run(1, 0.5, 7.0), run(2, 0.5, 9.0)], ds, re3d_schema,
                                 bench.load_config(args.config), label_counts, "a test machine", args))
    assert "trained again on train+validation (2 documents) up to that epoch (per seed: 1: 7, 2: 9)." in page
    assert ("For comparison, the same settings without refit: lenient micro F1 0.500 ± 0.354; relations "
            f"0.500 ± 0.000 (gold entities), 0.500 ± 0.000 (end to end) (seeds 1, 2; `{other}`).") in page


# ----------------------------------------------------------------------------- config, schema and tuning page
def test_config_finds_the_schema_from_the_repository_root_and_the_scripts_by_absolute_path():
    from conflict_ie.config import TrainConfig

    config = BENCH / "configs" / "re3d-minilm.yaml"
    # The YAML's own `schema:` is relative to the current directory: right from the repository root.
    assert (REPO / TrainConfig.load(config).schema).resolve() == conv.DEFAULT_SCHEMA
    for script in (bench_re3d, tune_re3d):
        loaded = script.load_config(config, ["seed=3"])
        assert Path(loaded.schema).is_absolute() and Path(loaded.schema) == script.SCHEMA == conv.DEFAULT_SCHEMA
        assert loaded.seed == 3 and LabelSchema.load(loaded.schema).name == "re3d"
        assert script.load_config(config, ["schema=conflict"]).schema == "conflict"  # an override still wins


def test_every_tuning_setting_is_a_valid_config():
    """A setting that names a key the config no longer has (e.g. a removed option) fails here."""
    config = BENCH / "configs" / "re3d-minilm.yaml"
    for overrides in [*tune_re3d.SETTINGS.values(), *tune_re3d.RELATION_SETTINGS.values()]:
        tune_re3d.load_config(config, overrides)


def test_tuning_page_holds_only_measured_results(tmp_path, monkeypatch, capsys):
    import argparse

    monkeypatch.setattr("conflict_ie.run.hardware", lambda: "a test machine")

    def entry(f1, seed=1):
        return {"overrides": [], "decoding": "viterbi", "seed": seed, "validation_entity_f1": f1, "steps": 10,
                "minutes": 1.0}

    results = {"Viterbi: label all": entry(0.5), "Viterbi: label all (seed 2)": entry(0.75, seed=2),
               "a setting since removed": entry(0.875)}
    page_file = tmp_path / "tuning.md"
    args = argparse.Namespace(doc=str(page_file), config=str(BENCH / "configs" / "re3d-minilm.yaml"))
    tune_re3d.write_page(results, args)
    page = page_file.read_text(encoding="utf-8")
    assert "a setting since removed" not in page and "0.875" not in page
    assert "a setting since removed" in capsys.readouterr().err
    assert "- Viterbi: label all: 0.625 (2 seed(s))" in page
    # Every three-decimal number on the page comes from the results given here.
    assert set(re.findall(r"\b\d\.\d{3}\b", page)) <= {"0.500", "0.750", "0.625"}
    assert "`benchmarks/re3d/configs/re3d-minilm.yaml`" in page
