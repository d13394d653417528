"""``conflict-ie predict``: several files, folders, JSONL, standard input, batching, early input checks."""

import io
import json
import sys

from conflict_ie.cli import main as cli


def run_json(capsys, *args):
    capsys.readouterr()
    assert cli(["predict", *args, "--format", "jsonl"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_files_folders_jsonl_and_stdin(world, tmp_path, capsys, monkeypatch):
    run = str(world[0] / "run")
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "b.txt").write_text("Wagner Group fighters killed 12 villagers in Bakhmut.")
    (folder / "a.txt").write_text("Governor Ivan Petrov of Belgorod spoke.")
    (folder / "notes.md").write_text("not an article")
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text(json.dumps({"id": "n1", "text": "Calm in Mogadishu."}) + "\n\n"
                     + json.dumps({"id": 7, "text": "Somali forces fought back."}) + "\n")
    rows = run_json(capsys, "--model", run, str(folder), str(jsonl), "--batch-size", "2")
    assert [r["file"] for r in rows] == ["a.txt", "b.txt", "n1", "7"]
    assert rows[2]["text"] == "Calm in Mogadishu."
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("Fighting in Bakhmut.".encode())))
    (row,) = run_json(capsys, "--model", run, "-")
    assert row["file"] == "-" and row["text"] == "Fighting in Bakhmut."


def test_inputs_are_checked_before_the_model_loads(tmp_path, capsys):
    # The model path does not exist either: the error must be about the input, found first.
    assert cli(["predict", "--model", str(tmp_path / "no-model"), str(tmp_path / "missing.txt")]) == 2
    err = capsys.readouterr().err
    assert "missing.txt" in err and "no-model" not in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "text": "ok"}\n{"id": 2, "body": "no text"}\n')
    assert cli(["predict", "--model", str(tmp_path / "no-model"), str(bad)]) == 2
    assert "line 2" in capsys.readouterr().err
    lone = tmp_path / "lone.txt"
    lone.write_bytes(b"\xff\xfe\x00")
    assert cli(["predict", "--model", str(tmp_path / "no-model"), str(lone)]) == 2
    assert "lone.txt" in capsys.readouterr().err
    assert cli(["predict", "--model", str(tmp_path / "no-model"), str(lone), "--batch-size", "0"]) == 2
    assert "--batch-size" in capsys.readouterr().err
