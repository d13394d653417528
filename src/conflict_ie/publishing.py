"""Publish a run: the files to push, a model card rendered from the run's own files, the push.

The pushed folder loads with plain ``transformers`` (the NER model and tokenizer
at the root, ``id2label`` in ``config.json``) and with ``Predictor.from_pretrained``
(``relations/`` holds the relation and casualty-type model with its own config).
The card is ``conflict_ie/templates/model_card.md`` (a Jinja template shipped as package data) filled
with numbers read from ``metrics.json``, ``train_config.yaml``,
``training_info.json`` and the corpus; its metadata is built with
``huggingface_hub.ModelCardData`` so that it follows the Hub's conventions.
"""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from conflict_ie import __version__
from conflict_ie.errors import InputError
from conflict_ie.schema import LabelSchema

#: The default model-card template: package data, so ``publish`` works wherever the package is installed.
TEMPLATE = resources.files("conflict_ie") / "templates" / "model_card.md"
#: Hub ids of the base models that ship under an alias (for ``base_model`` in the card).
ALIAS_HUB_IDS = {"minilm-l6-offline": "sentence-transformers/all-MiniLM-L6-v2"}
#: Files and folders of a run folder that are pushed; everything else (checkpoints, pickled
#: training arguments, the corpus copy) stays local.
ROOT_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "vocab.txt", "conflict_ie.json", "schema.yaml", "train_config.yaml", "metrics.json",
              "training_info.json", "log_history.json", "refit_log_history.json")
RELATION_FILES = ("config.json", "model.safetensors", "tokenizer.json",
                  "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def _r(x: float) -> str:
    return f"{x:.3f}"


def pipeline_kwargs(run: str | Path) -> dict[str, Any]:
    """The arguments of the plain ``transformers.pipeline`` call the model card gives: word-level
    aggregation by each word's first sub-token (as the Predictor reads words) and the run's stride;
    the window is the saved tokenizer's ``model_max_length``, which the run sets to its own.

    Example:
        >>> # pipeline("token-classification", model="runs/demo", **pipeline_kwargs("runs/demo"))
    """
    return {"aggregation_strategy": "first", "stride": int(_inference_settings(run)["stride"])}


def _inference_settings(run: str | Path) -> dict[str, Any]:
    """The run's ``conflict_ie.json``, or what the Predictor assumes without one."""
    path = Path(run) / "conflict_ie.json"
    return {"max_length": 256, "stride": 64, **(json.loads(path.read_text()) if path.exists() else {})}


def pipeline_call(run: str | Path, model: str) -> str:
    """The pipeline call of the model card, as Python source."""
    kw = pipeline_kwargs(run)
    return (f'pipeline("token-classification", model="{model}", aggregation_strategy="{kw["aggregation_strategy"]}", '
            f'stride={kw["stride"]})')


def card_context(run: Path, repo_id: str) -> tuple[Any, dict[str, Any]]:
    """``(ModelCardData, template variables)`` from a run folder's files."""
    from huggingface_hub import EvalResult, ModelCardData

    metrics = json.loads((run / "metrics.json").read_text())
    config = yaml.safe_load((run / "train_config.yaml").read_text())
    info = json.loads((run / "training_info.json").read_text()) if (run / "training_info.json").exists() else {}
    schema = LabelSchema.load(run / "schema.yaml")
    base = config["base_model"]
    base_id = ALIAS_HUB_IDS.get(base, base if "/" in base and not Path(base).exists() else None)
    ner = metrics["ner"]
    dataset_name = f"conflict_ie corpus ({schema.name} schema)"
    results = []
    for mode, prefix in (("strict", "Strict"), ("lenient", "Lenient (seqeval)")):
        for key in ("precision", "recall", "f1"):
            results.append(EvalResult(task_type="token-classification", task_name="Named entity recognition",
                                      dataset_type="conflict_ie", dataset_name=dataset_name, dataset_split="test",
                                      metric_type=key if mode == "lenient" else f"strict_{key}",
                                      metric_name=f"{prefix} entity {key}", metric_value=round(ner[mode]["micro"][key], 4)))
    if "relations" in metrics:
        for key in ("gold_entities", "end_to_end"):
            results.append(EvalResult(task_type="token-classification", task_name="Relation extraction",
                                      dataset_type="conflict_ie", dataset_name=dataset_name, dataset_split="test",
                                      metric_type=f"relation_f1_{key}", metric_name=f"Relation F1 ({key.replace('_', ' ')})",
                                      metric_value=round(metrics["relations"][key]["micro"]["f1"], 4)))
    datasets_ = list(config.get("hub_datasets") or [])
    card_data = ModelCardData(
        language="en", license="apache-2.0", library_name="transformers", pipeline_tag="token-classification",
        tags=["token-classification", "ner", "relation-extraction", "armed-conflict", "conflict_ie"],
        base_model=base_id, datasets=datasets_ or None, model_name=repo_id.split("/")[-1], eval_results=results,
        metrics=["seqeval"],
    )
    corpus_counts = _corpus_counts(run, schema)
    ner_cfg, rel_cfg = config["ner"], config["relations"]
    hyper = [("base model", base_id or base), ("max length / stride", f"{ner_cfg['max_length']} / {ner_cfg['stride']}"),
             ("also trained on windows of", ", ".join(map(str, ner_cfg.get("extra_window_lengths") or ())) or "-"),
             ("learning rate", ner_cfg["learning_rate"]), ("epochs (max)", ner_cfg["epochs"]),
             ("batch size", ner_cfg["batch_size"]), ("warm-up", ner_cfg["warmup"]),
             ("weight decay", ner_cfg["weight_decay"]), ("label smoothing", ner_cfg["label_smoothing"]),
             ("sub-tokens labelled", "all" if ner_cfg["label_all_tokens"] else "first"),
             ("early stopping patience (epochs)", ner_cfg["early_stopping_patience"]), ("seed", config["seed"]),
             ("steps run", info.get("global_steps", "?"))]
    has_rel = "relations" in metrics and (run / "relations").is_dir()
    if has_rel:
        hyper += [("relation model: learning rate / epochs", f"{rel_cfg['learning_rate']} / {rel_cfg['epochs']}"),
                  ("relation candidates", f"sentence distance <= {rel_cfg['max_sentence_distance']}, "
                                          f"<= {rel_cfg['max_token_distance']} tokens apart"),
                  ("NONE pairs per positive", "all" if rel_cfg["negative_ratio"] < 0 else rel_cfg["negative_ratio"])]
    context = {
        "model_name": repo_id.split("/")[-1],
        "repo_id": repo_id,
        "pipeline_call": pipeline_call(run, repo_id),
        "window": _inference_settings(run)["max_length"],
        "package_version": __version__,
        "year": datetime.date.today().year if not info.get("year") else info["year"],
        "base_model": base_id or base,
        "labels": list(schema.entity_labels),
        "entities": schema.entities,
        "schema_name": schema.name,
        "has_relations": has_rel,
        "relation_labels": list(schema.relation_labels),
        "relations": [{"label": r.label, "description": r.description,
                       "pairs": ", ".join(f"{a} {'↔' if r.symmetric else '→'} {b}" for a, b in r.pairs)} for r in schema.relations],
        "attributes": [{"name": a.name, "applies_to": ", ".join(a.applies_to), "choices": ", ".join(a.choices)}
                       for a in schema.attributes],
        "data_description": corpus_counts["description"],
        "split_rows": corpus_counts["rows"],
        "n_train_docs": corpus_counts["n_train"],
        "hyperparameters": hyper,
        "hardware": info.get("hardware", "not recorded"),
        "ner_minutes": f"{info['ner_train_seconds'] / 60:.1f}" if "ner_train_seconds" in info else "not recorded",
        "rel_minutes": f"{info['relation_train_seconds'] / 60:.1f}" if "relation_train_seconds" in info else None,
        "best_val_f1": _r(info["best_validation_entity_f1"]) if info.get("best_validation_entity_f1") is not None
        else "not recorded",
        "refit_epoch": f"{info['refit']['epoch']:g}" if info.get("refit") else None,
        "refit_documents": info["refit"]["train_documents"] if info.get("refit") else None,
        "n_documents": metrics["n_documents"],
        "n_gold": metrics["n_gold_entities"],
        "overall_rows": [
            {"name": name, "p": _r(b["precision"]), "r": _r(b["recall"]), "f": _r(b["f1"])}
            for name, b in (("strict, micro", ner["strict"]["micro"]), ("strict, macro", ner["strict"]["macro"]),
                            ("lenient, micro", ner["lenient"]["micro"]), ("lenient, macro", ner["lenient"]["macro"]),
                            ("partial overlap, micro", ner["partial_overlap"]["micro"]))
        ],
        "label_rows": [
            {"label": l, "p": _r(ner["strict"]["per_label"][l]["precision"]),
             "r": _r(ner["strict"]["per_label"][l]["recall"]), "f": _r(ner["strict"]["per_label"][l]["f1"]),
             "lf": _r(ner["lenient"]["per_label"][l]["f1"]), "support": ner["strict"]["per_label"][l]["support"]}
            for l in schema.entity_labels
        ],
        "relation_rows": [
            {"name": k.replace("_", " "), "p": _r(metrics["relations"][k]["micro"]["precision"]),
             "r": _r(metrics["relations"][k]["micro"]["recall"]), "f": _r(metrics["relations"][k]["micro"]["f1"])}
            for k in ("gold_entities", "end_to_end")
        ] if has_rel else [],
        "casualties": {"n": metrics["casualties"]["n"], "type_accuracy": _r(metrics["casualties"]["type_accuracy"]),
                       "count_exact": _r(metrics["casualties"]["count_exact"])} if "casualties" in metrics else None,
    }
    return card_data, context


def _corpus_counts(run: Path, schema: LabelSchema) -> dict[str, Any]:
    """Documents and entity counts per split, and where the documents came from."""
    info = json.loads((run / "training_info.json").read_text()) if (run / "training_info.json").exists() else {}
    counts = info.get("corpus_label_counts", {})
    sizes = info.get("corpus_sizes", {})
    rows = [{"name": name, "documents": sizes.get(name, "?"),
             "counts": [counts.get(name, {}).get(l, 0) for l in schema.entity_labels]}
            for name in ("train", "validation", "test")]
    origins = info.get("corpus_origins", {})
    description = "Provenance of the documents (task `meta.origin`, or the source file): " + (
        "; ".join(f"{k}: {v}" for k, v in sorted(origins.items())) if origins else "not recorded") + "."
    return {"rows": rows, "description": description, "n_train": sizes.get("train", "?")}


def render_card(run: str | Path, repo_id: str, template: str | Path | None = None) -> str:
    """The model card text (YAML metadata + body) for ``run``.

    Example:
        >>> # print(render_card("runs/demo", "me/conflict-minilm"))
    """
    import jinja2
    from huggingface_hub import ModelCard

    template = Path(template) if template else TEMPLATE  # a template of your own, or the shipped one
    if not template.is_file():
        raise InputError(f"model card template not found: {template}")
    card_data, context = card_context(Path(run), repo_id)
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    text = env.from_string(template.read_text(encoding="utf-8")).render(card_data=card_data.to_yaml(), **context)
    ModelCard(text)  # validates the metadata block the way the Hub reads it
    return text


def stage(run: str | Path, out: str | Path, repo_id: str) -> list[Path]:
    """Copy what would be pushed into ``out`` and write the card as ``README.md``; returns the files."""
    run, out = Path(run), Path(out)
    if not (run / "config.json").exists() or not (run / "metrics.json").exists():
        raise InputError(f"{run} is not a finished run folder (config.json and metrics.json are needed)")
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name in ROOT_FILES:
        if (run / name).exists():
            shutil.copy2(run / name, out / name)
            files.append(out / name)
    for png in sorted((run / "report").glob("*.png")):
        (out / "report").mkdir(exist_ok=True)
        shutil.copy2(png, out / "report" / png.name)
        files.append(out / "report" / png.name)
    if (run / "relations").is_dir():
        (out / "relations").mkdir(exist_ok=True)
        for name in RELATION_FILES:
            if (run / "relations" / name).exists():
                shutil.copy2(run / "relations" / name, out / "relations" / name)
                files.append(out / "relations" / name)
    (out / "README.md").write_text(render_card(run, repo_id), encoding="utf-8")
    files.append(out / "README.md")
    return files


def publish(run: str | Path, *, repo_id: str, private: bool = False, revision: str | None = None,
            commit_message: str | None = None, dry_run: bool = False, out: str | Path | None = None,
            api=None) -> Path:
    """Push ``run`` to the Hub as ``repo_id`` (``create_repo`` + ``upload_folder``), or stage it only.

    With ``dry_run`` the folder is written to ``out`` and nothing is pushed.
    """
    if dry_run and not out:
        raise InputError("--dry-run needs --out DIR: where to write what would be pushed")
    folder = Path(out) if out else Path(tempfile.mkdtemp(prefix="conflict-ie-publish-"))
    files = stage(run, folder, repo_id)
    if dry_run:
        print(f"dry run: {len(files)} files written to {folder}; nothing pushed")
        for f in files:
            print(f"  {f.relative_to(folder)}")
        return folder
    from huggingface_hub import HfApi

    api = api or HfApi()
    try:
        api.create_repo(repo_id=repo_id, private=private, repo_type="model", exist_ok=True)
        if revision:
            api.create_branch(repo_id=repo_id, branch=revision, repo_type="model", exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model", revision=revision,
                          commit_message=commit_message or f"Upload {repo_id} (conflict_ie {__version__})")
    except Exception as exc:  # network, auth and hub errors come in many classes; all mean "not pushed"
        import httpx

        offline = isinstance(exc, (httpx.ConnectError, httpx.TimeoutException, OSError)) or "offline" in str(exc)
        hint = ("no network connection to the Hugging Face Hub: push from a machine that has one, or use "
                "--dry-run --out DIR" if offline else "log in with `hf auth login` or set HF_TOKEN")
        raise InputError(f"push to {repo_id} failed ({hint}): {type(exc).__name__}: {exc}") from None
    print(f"pushed {len(files)} files to https://huggingface.co/{repo_id}")
    return folder
