"""Fine-tuning: thin wrappers over ``transformers.Trainer`` for the two models.

The loop, logging, progress bars, checkpointing, resuming and multi-process
training (``torchrun`` / ``accelerate launch``) are the Trainer's. What is
added here is what the task needs: windows with aligned labels from the
document corpus, a document-level entity F1 on the validation split for model
selection and early stopping, and the relation model's rows and collator.
The whole run (train, save, evaluate, report) is :mod:`conflict_ie.run`.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from conflict_ie.alignment import (AlignmentReport, decode_words, make_windows, special_tokens,
                                   spans_from_word_tags, tokenize_document)
from conflict_ie.config import TrainConfig, resolve_base_model
from conflict_ie.corpus import documents_of
from conflict_ie.documents import Document
from conflict_ie.errors import ConfigError
from conflict_ie.evaluation import strict_scores
from conflict_ie.relation_data import DESIGN, RelationCollator, RelationEncoder, marker_tokens, training_rows
from conflict_ie.schema import LabelSchema

log = logging.getLogger(__name__)


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
    extra = {}
    if ner.extra_window_lengths:
        import datasets

        # The same documents cut at other lengths as well: a model trained on one length reads
        # longer windows much worse (7 F1 points lost at 256 after training at 128 only).
        parts = [train_ds] + [windows_dataset(train_docs, tokenizer, schema, **{**kw, "max_length": n})[0]
                              for n in ner.extra_window_lengths]
        train_ds = datasets.concatenate_datasets(parts)
        # Batches of windows of about one length: a 128-token window padded to 512 costs four times over.
        extra["train_sampling_strategy"] = "group_by_length"
    val_ds, val_rows = windows_dataset(val_docs, tokenizer, schema, **kw) if val_docs else (None, [])
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(schema.bio_tags), id2label=schema.id2label, label2id=schema.label2id
    )
    has_eval = val_ds is not None and len(val_ds) > 0
    args = training_arguments(config, out, has_eval=has_eval, **extra)
    callbacks = [*([EarlyStoppingCallback(ner.early_stopping_patience)] if has_eval else []), *callbacks]
    loss = {}
    if ner.class_weight_power:
        weights = tag_weights(train_ds["labels"], len(schema.bio_tags), ner.class_weight_power)
        log.info("class weights (power %s): %s", ner.class_weight_power,
                 dict(zip(schema.bio_tags, [round(w, 2) for w in weights.tolist()])))
        loss["compute_loss_func"] = weighted_token_loss(weights, ner.label_smoothing)
    trainer = (_grouped_trainer_class() if ner.extra_window_lengths else Trainer)(
        model=model,
        args=args,
        **loss,
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


def tag_weights(labels: Sequence[Sequence[int]], n_tags: int, power: float):
    """Per-tag loss weights ``(largest count / count) ** power`` from the training windows' labels
    (``-100`` ignored); a tag never seen gets the largest weight of those seen.

    Example:
        >>> tag_weights([[0, 0, 0, 0, 1, -100], [0, 0, 0, 0, 2, 2]], 4, 0.5).tolist()
        [1.0, 2.8284270763397217, 2.0, 2.8284270763397217]
    """
    import torch

    counts = torch.zeros(n_tags)
    for row in labels:
        for tag in row:
            if tag >= 0:
                counts[tag] += 1
    seen = counts > 0
    weights = torch.ones(n_tags)
    weights[seen] = (counts.max() / counts[seen]) ** power
    weights[~seen] = weights[seen].max() if seen.any() else 1.0
    return weights


def weighted_token_loss(weights, label_smoothing: float = 0.0):
    """A ``Trainer`` ``compute_loss_func``: token cross-entropy with per-tag ``weights``.

    The weighted sum is divided by the number of labelled tokens in the (accumulated) batch, the
    ``num_items_in_batch`` the Trainer passes, so gradient accumulation adds up as without weights.
    ``transformers`` has no class-weight option; this is the hook it offers for one.

    Example:
        >>> import torch
        >>> f = weighted_token_loss(torch.tensor([1.0, 3.0]))
        >>> out = {"logits": torch.zeros(1, 2, 2)}
        >>> round(float(f(out, torch.tensor([[0, 1]]))), 4)  # (1 + 3) * ln 2 / 2 tokens
        1.3863
    """
    import torch.nn.functional as F

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"]
        flat = labels.reshape(-1)
        per_token = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), flat,
                                    weight=weights.to(logits.device), ignore_index=-100,
                                    label_smoothing=label_smoothing, reduction="sum")
        n = num_items_in_batch if num_items_in_batch is not None else (flat != -100).sum()
        return per_token / max(float(n), 1.0)

    return loss


def _grouped_trainer_class():
    from torch.utils.data import SequentialSampler
    from transformers import Trainer

    class TrainGroupedByLength(Trainer):
        """``Trainer`` with ``group_by_length`` for training only. transformers 5 applies that
        sampling strategy to evaluation too, which reorders the validation windows; the
        document-level F1 (``DocumentF1``) reads them in their order, and scored noise (0.05
        where the model had 0.85) until evaluation was kept sequential here."""

        def _get_eval_sampler(self, eval_dataset):
            return SequentialSampler(eval_dataset) if eval_dataset is not None else None

    return TrainGroupedByLength


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


def relation_training_arguments(config: TrainConfig, out: Path):
    """The ``TrainingArguments`` of the relation model: the config's ``relations`` settings, no
    checkpoints (the model is saved once, at the end) and every column passed to the model.

    Example:
        >>> # Trainer(model=model, args=relation_training_arguments(config, Path("rel")), train_dataset=rows)
    """
    from transformers import TrainingArguments

    rc = config.relations
    return TrainingArguments(
        output_dir=str(out / "checkpoints"), learning_rate=rc.learning_rate, num_train_epochs=rc.epochs,
        max_steps=rc.max_steps, per_device_train_batch_size=rc.batch_size, warmup_steps=rc.warmup,
        weight_decay=rc.weight_decay, save_strategy="no", report_to=list(config.ner.report_to),
        logging_steps=config.ner.logging_steps, seed=config.seed, data_seed=config.seed,
        remove_unused_columns=False,  # the model takes position_ids/pair_index/attr_index, unseen by Trainer
        **device_arguments(),
    )


def new_relation_model(config: TrainConfig, schema: LabelSchema, vocab_size: int, model_class=None):
    """An untrained relation model around the config's base encoder, with the config's relation
    settings and the schema's labels and attributes; ``model_class`` (default ``RelationModel``) may
    be a subclass that trains differently.

    Example:
        >>> # model = new_relation_model(config, schema, len(tokenizer))
    """
    from conflict_ie.relation_model import RelationModel

    rc = config.relations
    return (model_class or RelationModel).from_encoder(
        resolve_base_model(config.base_model), vocab_size, relation_labels=list(schema.relation_labels),
        attributes=[{"name": a.name, "applies_to": list(a.applies_to), "choices": list(a.choices)}
                    for a in schema.attributes],
        max_input_tokens=rc.max_length, max_sentence_distance=rc.max_sentence_distance,
        max_token_distance=rc.max_token_distance, threshold=rc.threshold, design=DESIGN, max_pairs=rc.max_pairs,
        pair_context=rc.pair_context, markers=rc.markers, encoder_layers=rc.encoder_layers)


def train_relations(config: TrainConfig, corpus, schema: LabelSchema, out: Path) -> dict[str, Any]:
    """Train the relation + attribute model on gold entities with ``transformers.Trainer`` and save
    it to ``out`` (``save_pretrained`` plus the tokenizer with its marker tokens). Returns the
    training-row counts, candidate counts included.

    Example:
        >>> # train_relations(TrainConfig.load("configs/train/conflict-minilm.yaml"), corpus, schema, Path("rel"))
    """
    from transformers import AutoTokenizer, Trainer, set_seed

    rc = config.relations
    set_seed(config.seed)
    base = resolve_base_model(config.base_model)
    # A fresh tokenizer: marker tokens are added to this copy only, never to a shared one.
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.add_special_tokens({"additional_special_tokens": marker_tokens(schema)})
    enc = RelationEncoder(tokenizer, schema, rc.max_length, rc.max_sentence_distance, rc.max_token_distance,
                          attributes=schema.attributes, max_pairs=rc.max_pairs, markers=rc.markers)
    rows, stats = training_rows(documents_of(corpus["train"], schema), enc, negative_ratio=rc.negative_ratio,
                                seed=config.seed)
    if not rows:
        raise ConfigError("no relation or attribute examples in the training split")
    model = new_relation_model(config, schema, len(tokenizer))
    args = relation_training_arguments(config, out)
    # A plain list: the rows' ragged pair lists need no Arrow schema, and Trainer only indexes them.
    trainer = Trainer(model=model, args=args, train_dataset=rows,
                      data_collator=RelationCollator(tokenizer.pad_token_id, len(schema.relation_labels)))
    trainer.train()
    if trainer.is_world_process_zero():
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    return stats
