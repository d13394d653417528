"""Fine-tuning: a thin layer over ``transformers.Trainer``.

The loop, logging, progress bars, checkpointing, resuming and multi-process
training (``torchrun`` / ``accelerate launch``) are the Trainer's. What is
added here is what the task needs: windows with aligned labels from the
document corpus, a document-level entity F1 on the validation split for model
selection and early stopping, and a run folder that carries everything needed
to reproduce and to load the result. With ``refit: true`` both models are then
trained again on train+validation, up to the epoch that validation picked.

Run folder::

    RUN/
      config.json, model.safetensors, tokenizer files   # the NER model: loads with plain transformers
      conflict_ie.json                                  # inference settings (windows, decoding)
      schema.yaml, train_config.yaml                    # what it was trained with (resolved)
      metrics.json, report/                             # test-split evaluation
      log_history.json                                  # the Trainer's log, for the learning curve
      refit_log_history.json                            # with ``refit``: the final run's log (loss only)
      relations/                                        # relation + casualty-type model (when trained)
      checkpoints/                                      # Trainer checkpoints (for --resume)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from conflict_ie.alignment import AlignmentReport, decode_words, make_windows, spans_from_word_tags, \
    tokenize_document
from conflict_ie.config import TrainConfig, resolve_base_model
from conflict_ie.corpus import (build_corpus, documents_of, label_counts, load_corpus, save_corpus,
                               split_documents)
from conflict_ie.documents import Document
from conflict_ie.errors import ConfigError
from conflict_ie.evaluation import strict_scores
from conflict_ie.predictor import INFERENCE_FILE
from conflict_ie.schema import LabelSchema

log = logging.getLogger(__name__)


def prepare_corpus(config: TrainConfig, corpus_dir: str | Path | None, out_dir: Path):
    """The corpus to train on: a folder given on the command line or in the config, or built from
    the config's ``inputs`` (Label Studio exports) into ``RUN/corpus``."""
    corpus_dir = corpus_dir or config.corpus
    if corpus_dir:
        return load_corpus(corpus_dir)
    if not config.inputs:
        raise ConfigError("no corpus: give --corpus DIR, or 'corpus:' or 'inputs:' in the config")
    from conflict_ie.labelstudio import read_labelstudio

    schema = LabelSchema.load(config.schema)
    docs: list[Document] = []
    for path in config.inputs:
        docs += read_labelstudio(path, schema).documents
    splits = split_documents(docs, config.split)
    corpus = build_corpus(splits, schema)
    # Under torchrun every rank builds the same corpus in memory; only the first writes the copy.
    if int(os.environ.get("RANK", "0")) == 0:
        save_corpus(corpus, schema, out_dir / "corpus", sources=config.inputs)
    return corpus, schema


def windows_dataset(docs: Sequence[Document], tokenizer, schema: LabelSchema, *, max_length: int, stride: int,
                    label_all_tokens: bool, report: AlignmentReport | None = None):
    """Token windows with aligned labels, as a ``datasets.Dataset``."""
    import datasets

    rows = []
    for i, doc in enumerate(docs):
        rows += make_windows(doc, tokenizer, max_length=max_length, stride=stride, label2id=schema.label2id,
                             label_all_tokens=label_all_tokens, doc_index=i, report=report)
    columns = ("input_ids", "attention_mask", "labels")
    return datasets.Dataset.from_dict({k: [r[k] for r in rows] for k in columns}), rows


class DocumentF1:
    """``compute_metrics`` that decodes validation windows back into whole documents and scores
    exact character spans (the number model selection and early stopping use)."""

    def __init__(self, docs: Sequence[Document], rows: Sequence[dict[str, Any]], tokenizer, schema: LabelSchema,
                 n_prefix: int, decode: Mapping[str, str] | None = None):
        self.docs = docs
        self.decode = dict(decode or {})  # the Predictor's decoding, so that selection scores what it will emit
        self.rows = rows
        self.schema = schema
        self.n_prefix = n_prefix
        self.tdocs = [tokenize_document(d.text, tokenizer) for d in docs]

    def __call__(self, eval_pred) -> dict[str, float]:
        probs = eval_pred.predictions
        per_doc: list[list[np.ndarray]] = [[] for _ in self.docs]
        bounds: list[list[tuple[int, int]]] = [[] for _ in self.docs]
        for r, row in enumerate(self.rows):
            n = row["token_end"] - row["token_start"]
            per_doc[row["doc_index"]].append(probs[r, self.n_prefix : self.n_prefix + n])
            bounds[row["doc_index"]].append((row["token_start"], row["token_end"]))
        pred_spans = []
        for doc, tdoc, b, p in zip(self.docs, self.tdocs, bounds, per_doc):
            if not tdoc.words:
                pred_spans.append([])
                continue
            tags, scores = decode_words(tdoc, b, p, self.schema.id2label, **self.decode)
            pred_spans.append([s for s, _ in spans_from_word_tags(tags, tdoc.words, scores, text=doc.text)])
        scores = strict_scores([d.spans for d in self.docs], pred_spans, self.schema.entity_labels)
        return {"entity_f1": scores["micro"]["f1"], "entity_precision": scores["micro"]["precision"],
                "entity_recall": scores["micro"]["recall"]}


def _softmax_logits(logits, labels):
    import torch

    return torch.softmax(logits.float(), dim=-1)


def inference_settings(config: TrainConfig) -> dict[str, str]:
    """How word tags are decoded for this config; saved in ``conflict_ie.json`` and used in validation.

    A model trained with every sub-token labelled reads a word as the mean over its sub-tokens;
    with first-sub-token labels the other sub-tokens were never trained, so only the first counts.

    Example:
        >>> inference_settings(TrainConfig.from_dict({"ner": {"label_all_tokens": True}}))
        {'decoding': 'viterbi', 'word_probs': 'mean'}
    """
    return {"decoding": config.ner.decoding, "word_probs": "mean" if config.ner.label_all_tokens else "first"}


def device_arguments() -> dict[str, Any]:
    """Without a GPU, ask for the CPU explicitly: only then does the Trainer (through accelerate)
    treat ``torchrun --nproc_per_node N`` as N cooperating CPU processes (gloo) instead of N
    independent runs."""
    import torch

    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return {"use_cpu": not (torch.cuda.is_available() or has_mps)}


def training_arguments(config: TrainConfig, out: Path, *, has_eval: bool, **extra):
    """Map the config onto the stock ``TrainingArguments`` (nothing re-declared)."""
    from transformers import TrainingArguments

    ner = config.ner
    strategy = "epoch" if ner.eval_steps <= 0 else "steps"
    return TrainingArguments(
        output_dir=str(out / "checkpoints"),
        learning_rate=ner.learning_rate,
        num_train_epochs=ner.epochs,
        max_steps=ner.max_steps,
        per_device_train_batch_size=ner.batch_size,
        per_device_eval_batch_size=ner.eval_batch_size,
        gradient_accumulation_steps=ner.gradient_accumulation_steps,
        warmup_steps=ner.warmup,  # transformers 5: a float below 1 is a ratio
        weight_decay=ner.weight_decay,
        label_smoothing_factor=ner.label_smoothing,
        eval_strategy=strategy if has_eval else "no",
        save_strategy=strategy,
        eval_steps=ner.eval_steps if ner.eval_steps > 0 else None,
        save_steps=ner.eval_steps if ner.eval_steps > 0 else 500,
        load_best_model_at_end=has_eval,
        metric_for_best_model="entity_f1" if has_eval else None,
        greater_is_better=True,
        save_total_limit=2,
        logging_steps=ner.logging_steps,
        report_to=list(ner.report_to),
        seed=config.seed,
        data_seed=config.seed,
        dataloader_num_workers=0,
        **device_arguments(),
        **extra,
    )


def train_ner(config: TrainConfig, corpus, schema: LabelSchema, out: Path, *, resume: bool = False,
              callbacks: Sequence[Any] = ()):
    """Fine-tune the token classifier; returns ``(trainer, alignment_report)``. Trainer checkpoints
    go to ``out/checkpoints``."""
    from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                              EarlyStoppingCallback, Trainer, set_seed)
    from transformers.trainer_utils import get_last_checkpoint

    set_seed(config.seed)
    base = resolve_base_model(config.base_model)
    tokenizer = AutoTokenizer.from_pretrained(base)
    ner = config.ner
    report = AlignmentReport()
    train_docs = documents_of(corpus["train"], schema)
    val_docs = documents_of(corpus["validation"], schema)
    if not train_docs:
        raise ConfigError("the corpus has no training documents")
    kw = dict(max_length=ner.max_length, stride=ner.stride, label_all_tokens=ner.label_all_tokens)
    train_ds, _ = windows_dataset(train_docs, tokenizer, schema, report=report, **kw)
    val_ds, val_rows = windows_dataset(val_docs, tokenizer, schema, **kw) if val_docs else (None, [])
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(schema.bio_tags), id2label=schema.id2label, label2id=schema.label2id
    )
    has_eval = val_ds is not None and len(val_ds) > 0
    args = training_arguments(config, out, has_eval=has_eval)
    from conflict_ie.alignment import special_tokens

    callbacks = [*([EarlyStoppingCallback(ner.early_stopping_patience)] if has_eval else []), *callbacks]
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds if has_eval else None,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
        compute_metrics=DocumentF1(val_docs, val_rows, tokenizer, schema, len(special_tokens(tokenizer)[0]),
                                   inference_settings(config)) if has_eval else None,
        preprocess_logits_for_metrics=_softmax_logits if has_eval else None,
        callbacks=callbacks,
    )
    ckpt_dir = out / "checkpoints"
    last = get_last_checkpoint(str(ckpt_dir)) if resume and ckpt_dir.is_dir() else None
    if resume and last is None:
        log.warning("--resume: no checkpoint in %s; starting from the beginning", ckpt_dir)
    elif not resume and ckpt_dir.is_dir() and int(os.environ.get("RANK", "0")) == 0:
        # Stale checkpoints of an earlier run would be mistaken for this run's best model.
        # (The launcher's RANK, not the Trainer's view: every rank reaches this line at once.)
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    trainer.train(resume_from_checkpoint=last)
    return trainer, report


def selected_epoch(state) -> float:
    """The epoch (possibly fractional, with ``eval_steps``) at which validation F1 was best.

    Example:
        >>> import types
        >>> selected_epoch(types.SimpleNamespace(best_global_step=60, log_history=[
        ...     {"eval_entity_f1": 0.4, "step": 30, "epoch": 1.0}, {"eval_entity_f1": 0.5, "step": 60, "epoch": 2.0}]))
        2.0
    """
    for entry in state.log_history:
        if "eval_entity_f1" in entry and entry.get("step") == state.best_global_step:
            return float(entry["epoch"])
    raise ConfigError("refit: the first run recorded no best validation step to refit up to")


def stop_at_epoch(epoch: float):
    """A ``TrainerCallback`` that ends training once ``epoch`` epochs are done.

    The refit run keeps ``ner.epochs`` as its length, so its learning-rate schedule has the same
    shape as in the run that chose the epoch, and stops where that run's best model was
    (a shorter run decays the rate sooner: a 10-epoch schedule lost two points of validation F1 on
    re3d, one seed).

    Example:
        >>> import types
        >>> cb, control = stop_at_epoch(2.0), types.SimpleNamespace(should_training_stop=False)
        >>> _ = cb.on_step_end(None, types.SimpleNamespace(epoch=2.0), control); control.should_training_stop
        True
    """
    from transformers import TrainerCallback

    class StopAtEpoch(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.epoch is not None and state.epoch >= epoch - 1e-9:
                control.should_training_stop = True
            return control

    return StopAtEpoch()


def refit_corpus(corpus):
    """The corpus with validation folded into train (and an empty validation split), for ``refit``."""
    import datasets

    merged = datasets.concatenate_datasets([corpus["train"], corpus["validation"]])
    return datasets.DatasetDict({**corpus, "train": merged, "validation": corpus["validation"].select([])})


def corpus_origins(corpus) -> dict[str, int]:
    """Documents per origin (``meta.origin`` of the Label Studio task, else the source file)."""
    from collections import Counter

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
    import os
    import platform

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
    if do_rel and schema.relations:
        from conflict_ie.relations import train_relations

        t0 = time.time()
        train_relations(config, train_corpus, schema, out / "relations")
        relation_seconds = round(time.time() - t0, 1)
    if not trainer.is_world_process_zero():
        return out
    schema.save(out / "schema.yaml")
    config.save(out / "train_config.yaml")
    (out / INFERENCE_FILE).write_text(
        json.dumps({"max_length": config.ner.max_length, "stride": config.ner.stride, **inference_settings(config)},
                   indent=2) + "\n")
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
    if relation_seconds is not None:
        info["relation_train_seconds"] = relation_seconds
    if selection:
        (out / "refit_log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1) + "\n")
        info["refit"] = {"epoch": selection["epoch"], "selection_global_steps": selection["global_steps"],
                         "train_documents": len(train_corpus["train"])}
    (out / "training_info.json").write_text(json.dumps(info, indent=2) + "\n")
    from conflict_ie.report import evaluate_run

    test_docs = documents_of(corpus["test"], schema)
    if test_docs:
        metrics = evaluate_run(out, test_docs, report_dir=out / "report")
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return out
