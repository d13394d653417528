import pytest

from conflict_ie.conll import read_conll
from conflict_ie.errors import InputError


def spans(doc):
    return [(doc.text[s.start:s.end], s.label) for s in doc.spans]


def test_wild_file_variants(tmp_path, schema):
    raw = ("-DOCSTART- -X- O O\r\n\r\n"
           "Wagner NNP B-NP B-ARMED_GROUP\r\n"
           "Group NNP  I-NP   I-ARMED_GROUP\r\n"
           "hit VBD O\r\n"
           "Kyiv NNP B-LOCATION\r\n"
           "   \r\n"  # spaces only between sentences
           "Zelenskiy B-OFFICIAL\r\n"
           "\r\r\n"  # a line holding only \r
           "-DOCSTART- O\n\n"
           "drones B-WEAPON\n"
           "fell O")  # no final newline
    p = tmp_path / "wild.conll"
    p.write_bytes(raw.encode())
    docs, report = read_conll(p, schema)
    assert len(docs) == 2
    assert docs[0].text == "Wagner Group hit Kyiv\nZelenskiy"
    assert spans(docs[0]) == [("Wagner Group", "ARMED_GROUP"), ("Kyiv", "LOCATION"), ("Zelenskiy", "OFFICIAL")]
    assert spans(docs[1]) == [("drones", "WEAPON")]
    assert report.n_sentences == 3 and not report.repaired and report.separator == "space"


def test_tab_file_with_a_space_separated_line_is_refused(tmp_path, schema):
    # In a tab file a token may hold spaces, so a line without a tab cannot be split safely.
    p = tmp_path / "mixed.tsv"
    p.write_text("-DOCSTART- -X- O O\n\nWagner\tNNP\tB-ARMED_GROUP\nGroup NNP I-ARMED_GROUP\n")
    with pytest.raises(InputError, match=r"mixed\.tsv: line 4: 'Group NNP I-ARMED_GROUP' has no tab, but the file "
                                         r"separates columns with tabs \(line 3 does\)"):
        read_conll(p, schema)


def test_iob1_and_stray_i_repaired_like_seqeval(tmp_path, schema):
    # IOB1: I- opens a chunk; B- only separates two adjacent chunks of one type.
    p = tmp_path / "iob1.txt"
    p.write_text("Wagner I-ARMED_GROUP\nGroup I-ARMED_GROUP\nand O\nHamas I-ARMED_GROUP\nHezbollah B-ARMED_GROUP\n"
                 "in O\nGaza I-LOCATION\n")
    (doc,), report = read_conll(p, schema)
    assert spans(doc) == [("Wagner Group", "ARMED_GROUP"), ("Hamas", "ARMED_GROUP"), ("Hezbollah", "ARMED_GROUP"),
                          ("Gaza", "LOCATION")]
    assert report.repaired["I_without_B"] == 3


def test_offsets_exact_after_rebuild(tmp_path, schema):
    p = tmp_path / "a.txt"
    p.write_text("the O\nRussian B-ARMED_GROUP\nVolunteer I-ARMED_GROUP\nCorps I-ARMED_GROUP\n\nin O\nBelgorod B-LOCATION\n")
    (doc,), _ = read_conll(p, schema)
    assert doc.text == "the Russian Volunteer Corps\nin Belgorod"
    assert [(s.start, s.end, s.label) for s in doc.spans] == [(4, 27, "ARMED_GROUP"), (31, 39, "LOCATION")]
    assert spans(doc) == [("Russian Volunteer Corps", "ARMED_GROUP"), ("Belgorod", "LOCATION")]


def test_unknown_label_names_line(tmp_path, schema):
    p = tmp_path / "a.txt"
    p.write_text("x O\nParis B-PLACE\n")
    with pytest.raises(InputError, match=r"line 2: label 'PLACE' is not in schema"):
        read_conll(p, schema)


def test_bad_tag_and_one_column(tmp_path, schema):
    p = tmp_path / "a.txt"
    p.write_text("x O\nParis LOC\n")
    with pytest.raises(InputError, match="line 2: tag 'LOC' is not O or B-/I-"):
        read_conll(p, schema)
    p.write_text("lonely\n")
    with pytest.raises(InputError, match="line 1: 'lonely' has one column"):
        read_conll(p, schema)
