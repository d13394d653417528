"""A whole training run: train the models, save them, evaluate on the test split, write the report.

This is the sequence ``conflict-ie train`` runs; the ``Trainer`` wrappers it calls
are in :mod:`conflict_ie.training`. With ``refit: true`` both models are trained
again on train+validation, up to the epoch that validation picked.

Run folder::

    RUN/
      config.json, model.safetensors, tokenizer files   # the NER model: loads with plain transformers
      conflict_ie.json                                  # inference settings (windows, decoding)
      schema.yaml, train_config.yaml                    # what it was trained with (resolved)
      metrics.json, report/                             # test-split evaluation
      training_info.json                                # timings, corpus counts, relation candidates
      log_history.json                                  # the Trainer's log, for the learning curve
      refit_log_history.json                            # with ``refit``: the final run's log (loss only)
      relations/                                        # relation + attribute model (save_pretrained)
      checkpoints/                                      # Trainer checkpoints (for --resume)
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from conflict_ie.config import TrainConfig
from conflict_ie.corpus import (build_corpus, deduplicate, documents_of, label_counts, load_corpus, save_corpus,
                                split_documents)
from conflict_ie.documents import Document
from conflict_ie.errors import ConfigError
from conflict_ie.labelstudio import read_labelstudio
from conflict_ie.evaluation import strict_scores
from conflict_ie.predictor import INFERENCE_FILE, Predictor
from conflict_ie.report import evaluate_run
from conflict_ie.schema import LabelSchema
from conflict_ie.standoff import is_standoff_folder, read_standoff
from conflict_ie.training import (inference_settings, refit_corpus, selected_epoch, stop_at_epoch, train_ner,
                                  train_relations)


def read_inputs(config: TrainConfig) -> tuple[list[Document], LabelSchema]:
    """The documents of the config's ``inputs`` (Label Studio exports and stand-off folders), with
    its schema; the same article given twice (by task id or by text) is refused, since it would sit
    in train and test at once.

    Example:
        >>> # docs, schema = read_inputs(TrainConfig.load("configs/train/conflict-full.yaml"))
    """
    if not config.inputs:
        raise ConfigError("no corpus: give --corpus DIR, or 'corpus:' or 'inputs:' in the config")
    schema = LabelSchema.load(config.schema)
    docs: list[Document] = []
    for path in config.inputs:
        if is_standoff_folder(path):
            docs += read_standoff(path, config.text_root or None, schema)
        else:
            docs += read_labelstudio(path, schema).require_documents()
    return deduplicate(docs)[0][""], schema


def prepare_corpus(config: TrainConfig, corpus_dir: str | Path | None, out_dir: Path):
    """The corpus to train on: a folder given on the command line or in the config, or built from
    the config's ``inputs`` (Label Studio exports and stand-off folders) into ``RUN/corpus``."""
    corpus_dir = corpus_dir or config.corpus
    if corpus_dir:
        return load_corpus(corpus_dir)
    docs, schema = read_inputs(config)
    splits = split_documents(docs, config.split)
    corpus = build_corpus(splits, schema)
    # Under torchrun every rank builds the same corpus in memory; only the first writes the copy.
    if int(os.environ.get("RANK", "0")) == 0:
        save_corpus(corpus, schema, out_dir / "corpus", sources=config.inputs)
    return corpus, schema




def set_window(run: Path, length: int, stride: int) -> None:
    """Record the window the run predicts with in ``conflict_ie.json`` and as the saved tokenizer's
    ``model_max_length`` (what a plain ``transformers`` pipeline reads)."""
    from transformers import AutoTokenizer

    settings = json.loads((run / INFERENCE_FILE).read_text())
    (run / INFERENCE_FILE).write_text(json.dumps({**settings, "max_length": length, "stride": stride}, indent=2) + "\n")
    tokenizer = AutoTokenizer.from_pretrained(run)
    tokenizer.model_max_length = length
    tokenizer.save_pretrained(run)


def choose_window(run: Path, docs: Sequence[Document], lengths: Sequence[int], stride: int,
                  tolerance: float = 0.005) -> dict[str, Any]:
    """The window length the run predicts with: the fastest of ``lengths`` whose strict validation F1
    is within ``tolerance`` of the best. Writes it into the run's ``conflict_ie.json`` and the saved
    tokenizer's ``model_max_length``, so that a plain ``transformers`` pipeline reads the same windows.

    Example:
        >>> # choose_window(Path("runs/demo"), validation_docs, (128, 512), 32)["chosen"]
    """
    predictor = Predictor.from_pretrained(run, relations=False)
    found: dict[int, dict[str, float]] = {}
    for n in lengths:
        predictor.max_length = n
        seconds = []
        for _ in range(2):  # the better of two: the first pays for warm-up
            t0 = time.perf_counter()
            outs = predictor.ner([d.text for d in docs])
            seconds.append(time.perf_counter() - t0)
        f1 = strict_scores([d.spans for d in docs], [[s for s, _ in o.spans] for o in outs],
                           predictor.schema.entity_labels)["micro"]["f1"] if docs else 0.0
        found[n] = {"validation_strict_f1": round(f1, 4), "seconds": round(min(seconds), 3)}
    best = max(v["validation_strict_f1"] for v in found.values())
    chosen = min((n for n, v in found.items() if v["validation_strict_f1"] >= best - tolerance),
                 key=lambda n: found[n]["seconds"]) if docs else lengths[0]
    set_window(run, chosen, stride)
    return {"lengths": {str(n): v for n, v in found.items()}, "chosen": chosen, "tolerance": tolerance,
            "validation_documents": len(docs)}


def corpus_origins(corpus) -> dict[str, int]:
    """Documents per origin (``meta.origin`` of the Label Studio task, else the source file)."""
    out: Counter = Counter()
    for split in corpus.values():
        for meta in split["meta"]:
            prov = json.loads(meta) if meta else {}
            fields = prov.get("fields") or {}
            origin = (fields.get("meta") or {}).get("origin") or Path(prov.get("source") or "unknown").name
            out[origin] += 1
    return dict(sorted(out.items()))


def hardware() -> str:
    """A short description of where training ran, for the model card."""
    import torch

    if torch.cuda.is_available():
        device = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    else:
        device = f"CPU only, {os.cpu_count()} cores ({platform.machine()})"
    world = os.environ.get("WORLD_SIZE", "1")
    return f"{device}; {world} process(es); torch {torch.__version__}"


def train(config: TrainConfig, *, corpus_dir: str | Path | None = None, output_dir: str | Path | None = None,
          resume: bool = False, relations: bool | None = None, callbacks: Sequence[Any] = ()) -> Path:
    """Train the NER model (and the relation model when enabled), evaluate on the test split and
    write the run folder. Works unchanged under ``torchrun`` (rank 0 writes the files).
    ``callbacks`` are extra ``TrainerCallback``s for the entity model.

    Example:
        >>> # train(TrainConfig.load("configs/train/conflict-minilm.yaml"), output_dir="runs/demo")
    """
    out = Path(output_dir or config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if config.refit and resume:
        # A checkpoint does not say which of the two runs it belongs to.
        raise ConfigError("--resume is not supported with 'refit: true'; start the run again")
    started = time.time()
    corpus, schema = prepare_corpus(config, corpus_dir, out)
    trainer, report = train_ner(config, corpus, schema, out, resume=resume, callbacks=callbacks)
    selection = None
    train_corpus = corpus
    if config.refit:
        if not len(corpus["validation"]):
            raise ConfigError("'refit: true' needs a validation split to choose the epoch")
        epoch = selected_epoch(trainer.state)
        selection = {"epoch": epoch, "best_validation_entity_f1": trainer.state.best_metric,
                     "global_steps": trainer.state.global_step, "log_history": trainer.state.log_history}
        train_corpus = refit_corpus(corpus)
        trainer, report = train_ner(config, train_corpus, schema, out, callbacks=[*callbacks, stop_at_epoch(epoch)])
    ner_seconds = time.time() - started
    # Every rank takes part in saving and in relation training (collective operations under
    # torchrun); the Trainers write files on the main process only.
    trainer.save_model(str(out))
    relation_seconds = None
    do_rel = config.relations.enabled if relations is None else relations
    relation_stats = None
    if do_rel and schema.relations:
        t0 = time.time()
        relation_stats = train_relations(config, train_corpus, schema, out / "relations")
        relation_seconds = round(time.time() - t0, 1)
    if not trainer.is_world_process_zero():
        return out
    schema.save(out / "schema.yaml")
    config.save(out / "train_config.yaml")
    (out / INFERENCE_FILE).write_text(
        json.dumps({"max_length": config.ner.max_length, "stride": config.ner.stride, **inference_settings(config)},
                   indent=2) + "\n")
    window = None
    if config.ner.extra_window_lengths:
        window = choose_window(out, documents_of(corpus["validation"], schema),
                               (config.ner.max_length, *config.ner.extra_window_lengths), config.ner.stride)
    else:
        # A plain pipeline reads windows of the tokenizer's model_max_length (512 for MiniLM): the
        # saved tokenizer says the length the model was trained on, so that it reads what it knows.
        set_window(out, config.ner.max_length, config.ner.stride)
    # With refit, the validation curve that chose the epoch is the selection run's; the refit run's
    # own log (training loss only) is kept beside it.
    (out / "log_history.json").write_text(
        json.dumps(selection["log_history"] if selection else trainer.state.log_history, indent=1) + "\n")
    info = {
        "alignment": report.summary(),
        "ner_train_seconds": round(ner_seconds, 1),
        "best_checkpoint": None if selection else trainer.state.best_model_checkpoint,
        "best_validation_entity_f1": selection["best_validation_entity_f1"] if selection else trainer.state.best_metric,
        "global_steps": trainer.state.global_step,
        "world_size": trainer.args.world_size,
        "corpus_sizes": {k: len(v) for k, v in corpus.items()},
        "hardware": hardware(),
        "corpus_label_counts": {k: dict(label_counts(v, schema)) for k, v in corpus.items()},
        "corpus_origins": corpus_origins(corpus),
        "year": time.gmtime().tm_year,
    }
    if window is not None:
        info["window_selection"] = window
    if relation_seconds is not None:
        info["relation_train_seconds"] = relation_seconds
        info["relation_training"] = relation_stats
    if selection:
        (out / "refit_log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1) + "\n")
        info["refit"] = {"epoch": selection["epoch"], "selection_global_steps": selection["global_steps"],
                         "train_documents": len(train_corpus["train"])}
    (out / "training_info.json").write_text(json.dumps(info, indent=2) + "\n")
    test_docs = documents_of(corpus["test"], schema)
    if test_docs:
        metrics = evaluate_run(out, test_docs, report_dir=out / "report")
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return out
