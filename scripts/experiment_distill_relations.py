#!/usr/bin/env python
"""A shallow relation model distilled from the run's full-depth one: an experiment for issue 13.

Three encoder layers with one marker per span reach issue 13's speed goal (full prediction at
50% of entities-only, ``docs/relation-start-markers.md``), but trained on gold labels alone they
scored 4.3 points below the per-pair design on re3d validation. Here the shallow model (the
*student*) learns from the gold labels and from the full-depth model's probabilities (the
*teacher*: a finished run's ``relations/`` folder, or one trained here first with the config
file's settings), on the same training rows: for every candidate pair the target of each relation
label is ``(1 - weight) * gold + weight * teacher``, and for every casualty-type span the target is
the same mix of the gold choice and the teacher's choice probabilities (knowledge distillation,
Hinton et al. 2015; ``--temperature`` softens the teacher's probabilities). Nothing else changes:
candidates, windows, packing, heads, the ``Trainer`` and its settings are
``training.train_relations``'s, so the student is a plain ``RelationModel`` that the Predictor
reads as it is. Results: ``docs/relation-distillation.md``.

``--init base`` starts the student from the base encoder's first layers, as
``relations.encoder_layers`` does; ``--init teacher`` from the teacher's first layers, its marker
embeddings and its heads.

A teacher fits the rows it was trained on almost exactly, so on those rows its probabilities are
nearly the gold labels. ``--cross-fit K`` labels each training row with a teacher that never saw its
document instead: the training documents are dealt into K folds (a fixed shuffle), one full-depth
teacher is trained per fold on the other folds with the config file's settings and seed 1 (kept in
``RUN/teacher-fold-F-of-K`` and reused), and each fold's rows take that fold's teacher's targets.
The student's rows are the same rows as without it: same sampling, same seed.
``--hidden-weight W`` also pulls each student layer towards the teacher layer at the same relative
depth (mean squared difference of the states, weight ``W``; ``DistilledRelationModel``).

    python scripts/experiment_distill_relations.py --run runs/demo --seeds 1 2 3 \\
        --split validation test --set relations.encoder_layers=3 --out distilled.json
    python scripts/experiment_distill_relations.py --run runs/demo --set relations.encoder_layers=3 \\
        --gap 1 3 --out unused.json   # how far the teacher's probabilities are from gold
    python scripts/experiment_distill_relations.py --run runs/demo --seeds 1 2 3 --cross-fit 3 \\
        --temperature 3 --split validation test --set relations.encoder_layers=3 --out cross-fitted.json

The results file has ``scripts/compare_relations.py``'s layout, so ``scripts/relations_page.py``
compares it with that script's files.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from conflict_ie.relation_data import RelationCollator, RelationEncoder  # noqa: E402
from conflict_ie.relation_model import RelationModel, relation_loss  # noqa: E402


class DistillCollator(RelationCollator):
    """The shipped collator, with each pair's relation targets mixed with the teacher's
    probabilities and each attribute span's choice targets as probabilities (``attr_target``)."""

    def __init__(self, pad_id: int, n_labels: int, weight: float, n_choices: int):
        super().__init__(pad_id, n_labels)
        self.weight, self.n_choices = weight, n_choices

    def __call__(self, rows):
        batch = super().__call__(rows)
        w = self.weight
        soft = [p for r in rows for p in r["teacher_rel"]]
        if soft:
            batch["rel_labels"] = (1 - w) * batch["rel_labels"] + w * torch.tensor(soft, dtype=torch.float)
        target = torch.zeros((len(batch["attr_label"]), self.n_choices))
        at = 0
        for r in rows:
            for a, p in zip(r["attrs"], r["teacher_attr"]):
                target[at, : len(p)] = w * torch.tensor(p, dtype=torch.float)
                target[at, a[2]] += 1 - w
                at += 1
        batch["attr_target"] = target
        # Which tokens are real, for hidden-state distillation: padding is not learned from.
        lengths = torch.tensor([len(r["input_ids"]) for r in rows])
        batch["real_tokens"] = torch.arange(batch["input_ids"].shape[1])[None] < lengths[:, None]
        return batch


class DistilledRelationModel(RelationModel):
    """``RelationModel`` whose attribute loss takes probability targets (``attr_target``); its
    relation loss is the shipped one, on the mixed targets the collator gives.

    With a teacher attached (``attach_hidden_teacher``), training also pulls each of the student's
    layers towards the teacher layer at the same relative depth (student layer ``l`` of ``S`` to
    teacher layer ``round(l * T / S)``): the mean squared difference of their states over the real
    tokens, text and markers, averaged over the layers and added with a weight to the loss (hidden-
    state distillation, as in TinyBERT, Jiao et al. 2020). The teacher is held outside the module's
    weights, so it is neither trained nor saved."""

    hidden_teacher: RelationModel | None = None
    hidden_weight: float = 0.0

    def attach_hidden_teacher(self, teacher: RelationModel, weight: float) -> None:
        """Train against ``teacher``'s hidden states with ``weight``; the teacher is frozen, in eval mode.

        Example:
            >>> # student.attach_hidden_teacher(RelationModel.from_pretrained("runs/demo/relations"), 1.0)
        """
        teacher.eval().requires_grad_(False)
        # object.__setattr__: an nn.Module attribute would register the teacher as a submodule.
        object.__setattr__(self, "hidden_teacher", teacher)
        self.hidden_weight = weight

    def forward(self, input_ids, attention_mask, position_ids, pair_index, attr_index, rel_labels=None,
                rel_mask=None, attr_label=None, pair_between=None, attr_target=None, real_tokens=None):
        if attr_target is None:
            return super().forward(input_ids, attention_mask, position_ids, pair_index, attr_index,
                                   rel_labels=rel_labels, rel_mask=rel_mask, attr_label=attr_label,
                                   pair_between=pair_between)
        teacher = self.hidden_teacher if self.hidden_weight else None
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
                  "token_type_ids": torch.zeros_like(input_ids)}
        enc = self.encoder(**inputs, output_hidden_states=teacher is not None)
        out = self.heads(enc.last_hidden_state, pair_index, attr_index, pair_between)
        losses = []
        if rel_labels is not None and len(rel_labels):
            losses.append(relation_loss(out["relation_logits"], rel_labels, rel_mask))
        for k, logits in enumerate(out["attribute_logits"]):
            mine = attr_index[:, 2] == k
            if mine.any():
                losses.append(nn.functional.cross_entropy(logits[mine], attr_target[mine, : logits.shape[-1]]))
        loss = torch.stack(losses).mean() if losses else enc.last_hidden_state.sum() * 0.0
        if teacher is not None:
            if real_tokens is None:
                raise ValueError("hidden-state distillation needs real_tokens (DistillCollator gives it)")
            with torch.no_grad():
                theirs = teacher.encoder(**inputs, output_hidden_states=True).hidden_states
            loss = loss + self.hidden_weight * hidden_state_gap(enc.hidden_states, theirs, real_tokens)
        out["loss"] = loss
        return out


def hidden_state_gap(mine, theirs, real_tokens: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between each of the student's layers (``mine[1:]``) and the teacher
    layer at the same relative depth, over the real tokens (``real_tokens``: ``(batch, width)``
    booleans), averaged over the student's layers. Index 0 of both is the embeddings, not matched.

    Example:
        >>> s = [torch.zeros(1, 2, 4)] * 2
        >>> t = [torch.zeros(1, 2, 4), torch.ones(1, 2, 4), torch.full((1, 2, 4), 3.0)]
        >>> hidden_state_gap(s, t, torch.tensor([[True, False]])).item()   # layer 1 of 1 reads teacher layer 2
        9.0
    """
    n_mine, n_theirs = len(mine) - 1, len(theirs) - 1
    keep = real_tokens[..., None].to(mine[-1].dtype)
    gaps = [(((mine[layer] - theirs[round(layer * n_theirs / n_mine)]) ** 2) * keep).sum()
            / (keep.sum() * mine[layer].shape[-1]).clamp(min=1.0) for layer in range(1, n_mine + 1)]
    return torch.stack(gaps).mean()


@torch.inference_mode()
def teacher_targets(teacher: RelationModel, rows: list[dict], pad_id: int, batch_size: int = 16,
                    temperature: float = 1.0) -> None:
    """Add ``teacher_rel`` (per pair, the teacher's probability of each relation label) and
    ``teacher_attr`` (per attribute span, of each choice) to every training row, in place; with
    ``temperature`` > 1 the probabilities come from the logits divided by it (softer targets).

    Example:
        >>> # teacher_targets(RelationModel.from_pretrained("runs/demo/relations"), rows, pad_id=0, temperature=3)
    """
    from conflict_ie.relation_inference import split_by_row

    teacher.eval()
    collate = RelationCollator(pad_id)
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        b = collate(chunk)
        out = teacher(b["input_ids"], b["attention_mask"], b["position_ids"], b["pair_index"], b["attr_index"],
                      pair_between=b["pair_between"])
        out = {"relation_logits": out["relation_logits"] / temperature,
               "attribute_logits": [a / temperature for a in out["attribute_logits"]]}
        # A training row's attribute job also carries its gold choice; split_by_row reads (marker, attribute).
        shapes = [{"pairs": r["pairs"], "attrs": [a[:2] for a in r["attrs"]]} for r in chunk]
        for row, (rel, attr) in zip(chunk, split_by_row(shapes, out)):
            row["teacher_rel"] = rel.tolist()
            row["teacher_attr"] = [a.tolist() for a in attr]


class DocumentTaggingEncoder(RelationEncoder):
    """The shipped ``RelationEncoder`` that tags every packed row with the index of its document
    (``doc``) in the order ``training_rows`` reads them, so that cross-fitting can give each row the
    teacher of its document's fold. ``training_rows`` calls ``prepare`` once per document, first;
    the tag travels with the row (``training_rows`` keeps the keys that ``pack`` adds), and the
    collator ignores it. Unlike the shipped encoder it counts, so it serves one ``training_rows``
    call only.

    Example:
        >>> # enc = DocumentTaggingEncoder(tokenizer, schema, 128, 1, 80, markers="start")
        >>> # rows, _ = training_rows(docs, enc, negative_ratio=3, seed=1); rows[0]["doc"]   # -> 0
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The frozen dataclass refuses only its own fields on a subclass, so the counter may change.
        self.doc = -1

    def prepare(self, text):
        self.doc += 1
        return super().prepare(text)

    def pack(self, window, jobs, stats=None):
        packed = super().pack(window, jobs, stats)
        for p in packed:
            p["doc"] = self.doc
        return packed


def document_folds(n_docs: int, k: int, seed: int = 0) -> list[int]:
    """The fold (0 to k-1) of each of ``n_docs`` documents: a fixed shuffle, then dealt in turn, so
    fold sizes differ by one at most.

    Example:
        >>> sorted(document_folds(7, 3))
        [0, 0, 0, 1, 1, 2, 2]
    """
    if not 2 <= k <= n_docs:
        raise ValueError(f"cross-fitting needs 2 to {n_docs} folds (one document at least in each), not {k}")
    order = list(range(n_docs))
    random.Random(seed).shuffle(order)
    fold = [0] * n_docs
    for rank, doc in enumerate(order):
        fold[doc] = rank % k
    return fold


def cross_fit_teachers(config, corpus, schema, run: Path, k: int) -> list[Path]:
    """One full-depth teacher per fold of the training documents (``document_folds``), each trained
    with ``config`` (the config file's settings, seed 1) on the other folds, in
    ``run/teacher-fold-F-of-K``. A folder already there is reused when its ``held_out.json`` names
    the same documents; otherwise it is an error rather than a stale teacher.

    Example:
        >>> # teachers = cross_fit_teachers(TrainConfig.load("runs/demo/train_config.yaml"), corpus, schema,
        >>> #                               Path("runs/demo"), 3)
    """
    from conflict_ie.training import train_relations

    train = corpus["train"]
    folds = document_folds(len(train), k)
    full = replace(config, seed=1, relations=replace(config.relations, encoder_layers=0))
    out = []
    for f in range(k):
        held = [i for i, g in enumerate(folds) if g == f]
        folder = run / f"teacher-fold-{f}-of-{k}"
        record = folder / "held_out.json"
        if (folder / "config.json").exists():
            if not record.exists() or json.loads(record.read_text()) != held:
                raise SystemExit(f"{folder} holds a teacher for other documents; remove it to train it again")
        else:
            print(f"training the teacher of fold {f} of {k} in {folder} ({len(held)} documents held out)", flush=True)
            started = time.perf_counter()
            train_relations(full, {"train": train.select([i for i, g in enumerate(folds) if g != f])}, schema, folder)
            record.write_text(json.dumps(held))
            print(f"teacher trained in {time.perf_counter() - started:.0f} s", flush=True)
        out.append(folder)
    return out


def student_from_teacher(teacher: RelationModel, layers: int) -> DistilledRelationModel:
    """A student with the teacher's config at ``layers`` encoder layers and the teacher's weights
    for everything it has: embeddings (marker tokens included), the first layers and the heads.

    Example:
        >>> # student = student_from_teacher(RelationModel.from_pretrained("runs/demo/relations"), 3)
    """
    config = type(teacher.config).from_dict(teacher.config.to_dict())
    config.encoder.num_hidden_layers = layers
    student = DistilledRelationModel(config)
    # The teacher's deeper layers are the keys the student lacks; a key the teacher lacks is an error.
    missing = student.load_state_dict(teacher.state_dict(), strict=False).missing_keys
    if missing:
        raise ValueError(f"the student has weights the teacher lacks: {missing[:5]}")
    return student


def teacher_gap(rows: list[dict]) -> float:
    """Mean absolute difference of the teacher's relation probabilities from the gold labels, over
    the labels each pair learns (``rel_mask``): near 0, the teacher only repeats the gold labels.

    Example:
        >>> teacher_gap([{"rel_labels": [[1.0, 0.0]], "rel_mask": [[1.0, 0.0]], "teacher_rel": [[0.75, 0.9]]}])
        0.25
    """
    diffs = [abs(p - g) for r in rows for ps, gs, ms in zip(r["teacher_rel"], r["rel_labels"], r["rel_mask"])
             for p, g, m in zip(ps, gs, ms) if m]
    return sum(diffs) / max(len(diffs), 1)


def train_student(config, corpus, schema, teacher_dir: Path, out: Path, *, weight: float, init: str,
                  temperature: float = 1.0, cross_fit: list[Path] | None = None, hidden_weight: float = 0.0):
    """The student trained as ``training.train_relations`` trains the shipped model, on the teacher's
    rows and tokenizer, with distillation targets; saved to ``out``. Returns the row counts.
    With ``cross_fit`` (``cross_fit_teachers``'s folders), each row's targets come from the teacher
    of its document's fold instead of from ``teacher_dir``. With ``hidden_weight`` > 0 the student
    also learns the teacher's hidden states (``DistilledRelationModel.attach_hidden_teacher``).

    Example:
        >>> # train_student(config, corpus, schema, Path("runs/demo/relations"), Path("student"), weight=0.5,
        >>> #               init="base", temperature=3)
    """
    from transformers import AutoTokenizer, Trainer, set_seed

    from conflict_ie.corpus import documents_of
    from conflict_ie.relation_data import training_rows
    from conflict_ie.training import new_relation_model, relation_training_arguments

    rc = config.relations
    set_seed(config.seed)
    if cross_fit and (init == "teacher" or hidden_weight):
        raise ValueError("a cross-fitted student has one teacher per fold, so it cannot start from a teacher "
                         "or learn its hidden states")
    tokenizer = AutoTokenizer.from_pretrained(cross_fit[0] if cross_fit else teacher_dir)
    teacher = RelationModel.from_pretrained(teacher_dir, use_safetensors=True) if not cross_fit else None
    # Tagging the rows with their documents changes nothing else: the same rows, sampled the same way.
    enc = (DocumentTaggingEncoder if cross_fit else RelationEncoder)(
        tokenizer, schema, rc.max_length, rc.max_sentence_distance, rc.max_token_distance,
        attributes=schema.attributes, max_pairs=rc.max_pairs, markers=rc.markers)
    docs = documents_of(corpus["train"], schema)
    rows, stats = training_rows(docs, enc, negative_ratio=rc.negative_ratio, seed=config.seed)
    started = time.perf_counter()
    if cross_fit:
        if enc.doc != len(docs) - 1:
            raise RuntimeError(f"tagged {enc.doc + 1} documents of {len(docs)}: training_rows changed its reading")
        folds = document_folds(len(docs), len(cross_fit))
        for f, folder in enumerate(cross_fit):
            fold_teacher = RelationModel.from_pretrained(folder, use_safetensors=True)
            check_markers(fold_teacher, rc.markers)
            teacher_targets(fold_teacher, [r for r in rows if folds[r["doc"]] == f], tokenizer.pad_token_id,
                            temperature=temperature)
    else:
        check_markers(teacher, rc.markers)
        teacher_targets(teacher, rows, tokenizer.pad_token_id, temperature=temperature)
    stats["teacher_seconds"] = round(time.perf_counter() - started, 1)
    stats["teacher_gap"] = round(teacher_gap(rows), 4)
    if init == "teacher":
        model = student_from_teacher(teacher, rc.encoder_layers)
    else:
        model = new_relation_model(config, schema, len(tokenizer), DistilledRelationModel)
    if hidden_weight:
        model.attach_hidden_teacher(teacher, hidden_weight)
    del teacher
    n_choices = max((len(a.choices) for a in enc.attributes), default=1)
    trainer = Trainer(model=model, args=relation_training_arguments(config, out), train_dataset=rows,
                      data_collator=DistillCollator(tokenizer.pad_token_id, len(schema.relation_labels), weight,
                                                    n_choices))
    trainer.train()
    # Saved as a plain RelationModel folder: the subclass adds a loss, no weights.
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return stats


def check_markers(teacher: RelationModel, markers: str) -> None:
    """Refuse a teacher whose marker layout is not the student's: their rows would differ.

    Example:
        >>> # check_markers(RelationModel.from_pretrained("runs/demo/relations"), "start")
    """
    if getattr(teacher.config, "markers", "start_end") != markers:
        raise ValueError(f"the teacher reads {teacher.config.markers!r} markers, the config {markers!r}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a finished run (its corpus/, ner model and train_config.yaml)")
    ap.add_argument("--teacher", help="the teacher's folder (default: the run's relations/, else one trained "
                                      "here with the config file's settings (not --set) at full depth and "
                                      "seed 1, kept in RUN/teacher)")
    ap.add_argument("--config", help="the training config (default: the run's train_config.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--split", nargs="+", default=["test"])
    ap.add_argument("--weight", type=float, default=0.5, help="share of the teacher in every target")
    ap.add_argument("--init", choices=["base", "teacher"], default="base")
    ap.add_argument("--temperature", type=float, default=1.0, help="soften the teacher's probabilities")
    ap.add_argument("--hidden-weight", type=float, default=0.0, metavar="W",
                    help="also pull each student layer towards the teacher layer at the same relative depth, "
                         "with this weight on the mean squared difference (0: off)")
    ap.add_argument("--cross-fit", type=int, default=0, metavar="K",
                    help="label each training row with a teacher that never saw its document: K full-depth "
                         "teachers, one per fold, trained here with the config file's settings and seed 1 "
                         "(kept in RUN/teacher-fold-F-of-K); not with --teacher, --init teacher, "
                         "--hidden-weight or --gap")
    ap.add_argument("--out", required=True, help="JSON file for the results")
    ap.add_argument("--keep", help="save each seed's student in KEEP/seed-N (default: discarded)")
    ap.add_argument("--gap", type=float, nargs="+", metavar="T", help="train nothing: print the teacher's gap "
                    "from gold (teacher_gap) on the train and validation rows at each temperature T")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from compare_relations import record_seed, split_scores
    from conflict_ie.config import TrainConfig
    from conflict_ie.corpus import documents_of, load_corpus
    from conflict_ie.predictor import Predictor
    from conflict_ie.relation_inference import RelationExtractor
    from conflict_ie.training import train_relations

    run = Path(args.run)
    config = TrainConfig.load(args.config or run / "train_config.yaml", args.set)
    if not config.relations.encoder_layers:
        raise SystemExit("set relations.encoder_layers to the student's depth (e.g. --set relations.encoder_layers=3)")
    corpus, schema = load_corpus(run / "corpus")
    if args.cross_fit and (args.gap or args.init == "teacher" or args.teacher or args.hidden_weight):
        raise SystemExit("--cross-fit has one teacher per fold: it takes no --teacher, --init teacher, "
                         "--hidden-weight or --gap")
    teacher = Path(args.teacher) if args.teacher else run / "relations"
    if args.cross_fit:
        fold_teachers = cross_fit_teachers(TrainConfig.load(args.config or run / "train_config.yaml"), corpus,
                                           schema, run, args.cross_fit)
    elif not (teacher / "config.json").exists():
        teacher = run / "teacher"
        if not (teacher / "config.json").exists():
            print(f"training the teacher in {teacher}", flush=True)
            started = time.perf_counter()
            # The config file's own settings, not the student's overrides (a student may train longer).
            own = TrainConfig.load(args.config or run / "train_config.yaml")
            full = replace(own, seed=1, relations=replace(own.relations, encoder_layers=0))
            train_relations(full, corpus, schema, teacher)
            print(f"teacher trained in {time.perf_counter() - started:.0f} s", flush=True)
    if args.gap:
        return print_gaps(config, corpus, schema, teacher, args.gap)
    ner = Predictor.from_pretrained(run, relations=False)
    splits = {name: documents_of(corpus[name], schema) for name in args.split}
    spans = {name: [[s for s, _ in o.spans] for o in ner.ner([d.text for d in docs])] for name, docs in splits.items()}
    fitted = f", cross-fitted over {args.cross_fit} folds" if args.cross_fit else ""
    fitted += f", hidden states at weight {args.hidden_weight}" if args.hidden_weight else ""
    results = {"label": f"{config.relations.encoder_layers} layers distilled (weight {args.weight}, "
                        f"init {args.init}, temperature {args.temperature}{fitted})", "run": str(run),
               "teacher": [str(f) for f in fold_teachers] if args.cross_fit else str(teacher), "overrides": args.set,
               "weight": args.weight, "init": args.init, "temperature": args.temperature, "cross_fit": args.cross_fit,
               "hidden_weight": args.hidden_weight, "seeds": {}}
    # A fold's teacher saw fewer documents than a full teacher: its scores say how much that costs.
    for key, folder in ([(f"teacher_scores_fold_{f}", d) for f, d in enumerate(fold_teachers)] if args.cross_fit
                        else [("teacher_scores", teacher)]):
        rx_teacher = RelationExtractor.from_pretrained(folder, schema=schema)
        results[key] = {name: split_scores(rx_teacher, docs, spans[name]) for name, docs in splits.items()}
        print(json.dumps({key: {k: {m: v[m] for m in ("gold_f1", "e2e_f1", "casualty_type_accuracy")}
                                for k, v in results[key].items()}}), flush=True)
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = replace(config, seed=seed)
            started = time.perf_counter()
            stats = train_student(cfg, corpus, schema, teacher, Path(tmp) / "rel", weight=args.weight, init=args.init,
                                  temperature=args.temperature, cross_fit=fold_teachers if args.cross_fit else None,
                                  hidden_weight=args.hidden_weight)
            seconds = time.perf_counter() - started
            rx = RelationExtractor.from_pretrained(Path(tmp) / "rel", schema=schema)
            row = {"train_seconds": round(seconds, 1), "train_stats": stats}
            for name, docs in splits.items():
                row[name] = split_scores(rx, docs, spans[name])
            if args.keep:
                shutil.copytree(Path(tmp) / "rel", Path(args.keep) / f"seed-{seed}", dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("checkpoints"))
            record_seed(results, seed, row, args.split, args.out)
    print(json.dumps(results["summary"], indent=2))
    return 0


def print_gaps(config, corpus, schema, teacher_dir: Path, temperatures) -> int:
    """``teacher_gap`` of the teacher on the train rows (which it was trained on) and on the
    validation rows (which it was not), at each temperature, as JSON lines.

    Example:
        >>> # print_gaps(config, corpus, schema, Path("runs/demo/relations"), [1.0, 3.0])
    """
    from transformers import AutoTokenizer

    from conflict_ie.corpus import documents_of
    from conflict_ie.relation_data import RelationEncoder, training_rows

    rc = config.relations
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    teacher = RelationModel.from_pretrained(teacher_dir, use_safetensors=True)
    enc = RelationEncoder(tokenizer, schema, rc.max_length, rc.max_sentence_distance, rc.max_token_distance,
                          attributes=schema.attributes, max_pairs=rc.max_pairs, markers=rc.markers)
    for split in ("train", "validation"):
        rows, _ = training_rows(documents_of(corpus[split], schema), enc, negative_ratio=rc.negative_ratio,
                                seed=config.seed)
        for t in temperatures:
            teacher_targets(teacher, rows, tokenizer.pad_token_id, temperature=t)
            print(json.dumps({"teacher": str(teacher_dir), "split": split, "temperature": t,
                              "teacher_gap": round(teacher_gap(rows), 4)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
