"""Training on windows of several lengths, and the run choosing the length it predicts with."""

import json

from conflict_ie.markup import parse_markup
from conftest import distinct_body


def test_extra_window_lengths_train_and_choose_a_window(tmp_path, schema):
    from transformers import AutoTokenizer

    from conflict_ie.cli import main as cli
    from conflict_ie.labelstudio import documents_to_tasks
    from tiny import tiny_base_model

    docs = [parse_markup(distinct_body(i), schema, doc_id=f"d{i}") for i in range(10)]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(documents_to_tasks(docs)))
    base = tiny_base_model(tmp_path / "base", [d.text for d in docs], hidden=16, layers=1)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"""
base_model: {base}
inputs: [{export}]
output_dir: {tmp_path / 'run'}
split: {{train: 0.6, validation: 0.2, test: 0.2}}
ner: {{max_length: 16, stride: 4, extra_window_lengths: [48], learning_rate: 0.05, epochs: 3, batch_size: 4}}
relations: {{enabled: false}}
""")
    assert cli(["train", "--config", str(cfg)]) == 0
    run = tmp_path / "run"
    info = json.loads((run / "training_info.json").read_text())
    selection = info["window_selection"]
    assert set(selection["lengths"]) == {"16", "48"} and selection["validation_documents"] == 2
    chosen = selection["chosen"]
    best = max(v["validation_strict_f1"] for v in selection["lengths"].values())
    assert selection["lengths"][str(chosen)]["validation_strict_f1"] >= best - selection["tolerance"]
    # Model selection scored the validation windows in their order: its best F1 is what the chosen
    # model scores at the training length (length-grouped sampling once scrambled that order).
    assert abs(info["best_validation_entity_f1"] - selection["lengths"]["16"]["validation_strict_f1"]) < 1e-3
    # The run predicts with it, and a plain pipeline reading the saved tokenizer does too.
    assert json.loads((run / "conflict_ie.json").read_text())["max_length"] == chosen
    assert AutoTokenizer.from_pretrained(run).model_max_length == chosen
