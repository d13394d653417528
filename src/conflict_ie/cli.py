"""The ``conflict-ie`` command line.

Errors a user can fix (bad input, bad config) print one clear message and exit
with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from conflict_ie.cli_corpus import cmd_corpus_build, print_report
from conflict_ie.errors import ConflictIEError, InputError


def _schema(args):
    from conflict_ie.schema import LabelSchema

    return LabelSchema.load(args.schema)


# ------------------------------------------------------------------ subcommands
def cmd_schema_config(args) -> int:
    sys.stdout.write(_schema(args).labelstudio_config())
    return 0


def cmd_agreement(args) -> int:
    from conflict_ie.agreement import agreement, format_agreement

    result = agreement(args.export, _schema(args), text_field=args.text_field)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_agreement(result))
    return 0


def cmd_labelstudio_pull(args) -> int:
    from conflict_ie.labelstudio_client import pull

    n = pull(args.url, args.project, args.out, api_key=_api_key(args))
    print(f"wrote {n} task(s) to {args.out}")
    return 0


def cmd_labelstudio_init(args) -> int:
    from conflict_ie.labelstudio_client import init_project

    project_id, n = init_project(args.url, _schema(args), args.texts, title=args.title, api_key=_api_key(args))
    print(f"created project {project_id} with {n} task(s): {args.url.rstrip('/')}/projects/{project_id}")
    return 0


def _api_key(args) -> str:
    key = os.environ.get("LABEL_STUDIO_API_KEY")
    if not key:
        raise InputError("set LABEL_STUDIO_API_KEY to your Label Studio access token (Account & Settings)")
    return key


def cmd_corpus_standoff(args) -> int:

    from conflict_ie.labelstudio import read_labelstudio
    from conflict_ie.standoff import standoff_tasks

    schema = _schema(args)
    tasks = standoff_tasks(args.annotations, args.text_root, schema, shared_only=args.shared_only)
    Path(args.out).write_text(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    # Read back with the strict reader: what is written is what a corpus build will read.
    docs = read_labelstudio(args.out, schema, policy="ground_truth").require_documents()
    n_ann = sum(len(t["annotations"]) for t in tasks)
    print(f"wrote {args.out}: {len(tasks)} task(s), {n_ann} annotation(s), {sum(len(d.spans) for d in docs)} "
          "spans in the ground-truth annotations", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    from conflict_ie.config import TrainConfig
    from conflict_ie.run import train

    config = TrainConfig.load(args.config, args.set or ())
    out = train(config, corpus_dir=args.corpus, output_dir=args.output, resume=args.resume,
                relations=False if args.no_relations else None)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 reports
        return 0
    metrics = out / "metrics.json"
    if metrics.exists():
        m = json.loads(metrics.read_text())
        print(f"test strict micro F1 {m['ner']['strict']['micro']['f1']:.3f}, "
              f"lenient {m['ner']['lenient']['micro']['f1']:.3f}")
    print(f"run folder: {out}")
    return 0


def _gold_documents(args):
    from conflict_ie.conll import read_conll
    from conflict_ie.corpus import documents_of, load_corpus
    from conflict_ie.labelstudio import read_labelstudio

    if args.corpus:
        corpus, schema = load_corpus(args.corpus)
        if args.split not in corpus:
            raise InputError(f"{args.corpus} has no split {args.split!r}; it has {list(corpus)}")
        docs = documents_of(corpus[args.split], schema)
        if not docs:
            raise InputError(f"the {args.split} split is empty: no documents to evaluate on", source=args.corpus,
                             reason="empty")
        return docs
    from conflict_ie.schema import LabelSchema

    model_dir = Path(args.model)
    schema = LabelSchema.load(model_dir / "schema.yaml") if (model_dir / "schema.yaml").exists() else None
    if args.input:
        res = read_labelstudio(args.input, schema, lenient=args.lenient)
        print_report(res.report)
        return res.require_documents()
    docs, rep = read_conll(args.conll, schema, lenient=args.lenient)
    print(rep.summary(), file=sys.stderr)
    if not docs:
        raise InputError(f"no documents to read: {rep.found()}", source=args.conll, reason="empty")
    return docs


def cmd_evaluate(args) -> int:
    from conflict_ie.report import evaluate_run

    docs = _gold_documents(args)
    report_dir = Path(args.report_dir) if args.report_dir else None
    metrics = evaluate_run(args.model, docs, report_dir=report_dir)
    print(json.dumps(metrics, indent=2))
    if report_dir:
        print(f"report: {report_dir / 'report.md'}", file=sys.stderr)
    return 0


def predict_inputs(paths: list[str], *, text_field: str = "text", id_field: str = "id") -> list[tuple[str, Any]]:
    """``(name, text)`` for every input of ``conflict-ie predict``, read before the model loads.

    A ``.jsonl`` file gives one text per line (``{"id": ..., "text": ...}``, named by its id); a
    folder gives its ``.txt`` and ``.jsonl`` files in name order; ``-`` reads standard input as
    one text; any other path is one text file. Text files come as bytes (decoded, with their
    errors named, by ``as_text``); JSONL texts as the strings the JSON holds.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.txt").write_text("Kyiv was hit.")
        >>> _ = (d / "b.jsonl").write_text('{"id": "n1", "text": "Calm in Lviv."}\\n')
        >>> predict_inputs([str(d)])
        [('a.txt', b'Kyiv was hit.'), ('n1', 'Calm in Lviv.')]
    """
    out: list[tuple[str, Any]] = []
    for value in paths:
        if value == "-":
            out.append(("-", sys.stdin.buffer.read()))
            continue
        path = Path(value)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in (".txt", ".jsonl") and p.is_file())
            if not files:
                raise InputError("the folder holds no .txt or .jsonl files", source=value)
        else:
            files = [path]
        for f in files:
            try:
                raw = f.read_bytes()
            except OSError as exc:
                raise InputError(f"cannot read: {exc.strerror}", source=str(f)) from None
            if f.suffix != ".jsonl":
                out.append((f.name if path.is_dir() else value, raw))
                continue
            for n, line in enumerate(raw.decode("utf-8-sig", errors="strict").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"line {n} is not JSON ({exc.msg})", source=str(f)) from None
                if not isinstance(row, dict) or not isinstance(row.get(text_field), str):
                    raise InputError(f"line {n}: expected an object with a string {text_field!r} field",
                                     source=str(f))
                out.append((str(row.get(id_field, f"{f.name}:{n}")), row[text_field]))
    if not out:
        raise InputError("no input texts")
    return out


def cmd_predict(args) -> int:
    from conflict_ie.output import write_predictions
    from conflict_ie.predictor import Predictor, as_text

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    # Read and decode every input before the model loads: a typo should not cost a model load.
    names, texts = [], []
    for name, raw in predict_inputs(args.files, text_field=args.text_field, id_field=args.id_field):
        try:
            texts.append(as_text(raw))
        except InputError as exc:
            raise InputError(str(exc), source=name) from None
        names.append(name)
    predictor = Predictor.from_pretrained(args.model, threshold=args.threshold,
                                          relation_threshold=args.relation_threshold, precision=args.precision,
                                          backend=args.backend)
    preds = list(predictor.stream(texts, batch_size=args.batch_size))
    write_predictions(sys.stdout, names, preds, args.format)
    return 0


def cmd_publish(args) -> int:
    from conflict_ie.publishing import publish

    publish(args.run_dir, repo_id=args.repo_id, private=args.private, revision=args.revision,
            commit_message=args.commit_message, dry_run=args.dry_run, out=args.out)
    return 0


def cmd_serve(args) -> int:
    from conflict_ie.serve import cmd_serve as serve

    return serve(args)


def cmd_extract(args) -> int:
    from conflict_ie.extract import cmd_extract as extract

    return extract(args)


def cmd_labelstudio_preannotate(args) -> int:
    from conflict_ie.labelstudio_loop import cmd_preannotate

    return cmd_preannotate(args)


def cmd_labelstudio_rank(args) -> int:
    from conflict_ie.labelstudio_loop import cmd_rank

    return cmd_rank(args)


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="conflict-ie", description="Conflict news -> entities, relations, casualties.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    def schema_arg(sp):
        sp.add_argument("--schema", default="conflict", help="schema name (configs/schema) or YAML path")

    def read_args(sp):
        sp.add_argument("--text-field", default=None, help="task data field holding the text (schema default)")
        sp.add_argument("--policy", default="ground_truth",
                        help="which annotation of a task: ground_truth (default), latest, first, annotator:WHO")
        sp.add_argument("--lenient", action="store_true",
                        help="instead of failing: skip bad tasks and regions, trim white space at span edges, drop "
                        "repeated documents (each counted)")

    s = sub.add_parser("schema", help="label schema tools").add_subparsers(dest="what", required=True)
    sp = s.add_parser("labelstudio-config", help="print the Label Studio labeling config XML")
    schema_arg(sp)
    sp.set_defaults(func=cmd_schema_config)

    ls = sub.add_parser("labelstudio", help="talk to a running Label Studio").add_subparsers(dest="what",
                                                                                              required=True)
    sp = ls.add_parser("pull", help="export a project (snapshot export: nothing lost)")
    sp.add_argument("--url", required=True)
    sp.add_argument("--project", required=True, type=int)
    sp.add_argument("--out", required=True)
    sp.set_defaults(func=cmd_labelstudio_pull)
    sp = ls.add_parser("init", help="create a project with the schema's config and import articles")
    sp.add_argument("--url", required=True)
    schema_arg(sp)
    sp.add_argument("--texts", required=True, help="a folder of .txt files or a JSONL file of {text, ...}")
    sp.add_argument("--title", default="Conflict news")
    sp.set_defaults(func=cmd_labelstudio_init)
    from conflict_ie.labelstudio_loop import add_preannotate_arguments, add_rank_arguments

    sp = ls.add_parser("preannotate", help="predict the unannotated tasks and import them as predictions")
    add_preannotate_arguments(sp)
    sp.set_defaults(func=cmd_labelstudio_preannotate)
    sp = ls.add_parser("rank", help="score unannotated tasks by uncertainty; a view lists the least certain first")
    add_rank_arguments(sp)
    sp.set_defaults(func=cmd_labelstudio_rank)

    sp = sub.add_parser("agreement", help="inter-annotator span F1 per label")
    sp.add_argument("export")
    schema_arg(sp)
    sp.add_argument("--text-field", default=None)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_agreement)

    c = sub.add_parser("corpus", help="build the datasets corpus").add_subparsers(dest="what", required=True)
    sp = c.add_parser("build")
    sp.add_argument("--input", action="append", help="Label Studio export (or SPLIT=FILE); repeatable")
    sp.add_argument("--conll", action="append", help="CoNLL file (or SPLIT=FILE); repeatable")
    schema_arg(sp)
    read_args(sp)
    sp.add_argument("--out", required=True)
    sp.add_argument("--ratios", default="0.8/0.1/0.1", help="train/validation/test by document")
    sp.add_argument("--seed", type=int, default=13)
    sp.add_argument("--split-field", default=None, help="meta field naming each document's split")
    sp.add_argument("--push-to-hub", default=None, metavar="REPO")
    sp.set_defaults(func=cmd_corpus_build)

    sp = c.add_parser("standoff", help="join stand-off annotations with their texts into a Label Studio export")
    sp.add_argument("--annotations", action="append", required=True, metavar="DIR",
                    help="stand-off folder (repeatable: each becomes one annotator's annotation of a task)")
    sp.add_argument("--text-root", default=None, help="the texts (default: each folder's manifest, "
                    "../shared/data/re3d for the bundled re3d annotations)")
    sp.add_argument("--shared-only", action="store_true", help="only documents that every folder annotated")
    schema_arg(sp)
    sp.add_argument("--out", required=True, help="the Label Studio JSON export to write")
    sp.set_defaults(func=cmd_corpus_standoff)

    sp = sub.add_parser("train", help="fine-tune from a YAML config")
    sp.add_argument("--config", required=True)
    sp.add_argument("--corpus", default=None)
    sp.add_argument("--output", default=None)
    sp.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    sp.add_argument("--no-relations", action="store_true", help="train the entity model only")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. ner.epochs=2")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("evaluate", help="score a model on gold documents")
    sp.add_argument("--model", required=True)
    g = sp.add_mutually_exclusive_group(required=True)
    g.add_argument("--input")
    g.add_argument("--conll")
    g.add_argument("--corpus")
    sp.add_argument("--split", default="test")
    sp.add_argument("--report-dir", default=None)
    sp.add_argument("--lenient", action="store_true", help="skip bad tasks and regions (counted) instead of failing")
    sp.set_defaults(func=cmd_evaluate)

    sp = sub.add_parser("predict", help="predict on text files, folders, JSONL files ('-' reads stdin)")
    sp.add_argument("--model", required=True)
    sp.add_argument("files", nargs="+", help="text files, folders of .txt/.jsonl files, .jsonl files of "
                    "{id, text} per line, or '-' for standard input")
    sp.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default 8)")
    sp.add_argument("--threshold", type=float, default=0.0, help="drop entities scored below this")
    sp.add_argument("--relation-threshold", type=float, default=None, help="override the run's relation threshold")
    sp.add_argument("--text-field", default="text", help="JSONL field holding the text")
    sp.add_argument("--id-field", default="id", help="JSONL field naming the text")
    sp.add_argument("--format", default="table", choices=["table", "json", "jsonl", "labelstudio", "casualties"])
    from conflict_ie.runtime import add_runtime_arguments

    add_runtime_arguments(sp)
    sp.set_defaults(func=cmd_predict)

    from conflict_ie.serve import add_arguments as serve_arguments

    sp = sub.add_parser("serve", help="HTTP server: /predict, a page to try the model, a Label Studio ML backend")
    serve_arguments(sp)
    sp.set_defaults(func=cmd_serve)

    from conflict_ie.extract import add_extract_arguments

    sp = sub.add_parser("extract", help="event tables (Parquet) from JSONL/Parquet archives; resumable; --engine ray")
    add_extract_arguments(sp)
    sp.set_defaults(func=cmd_extract)

    sp = sub.add_parser("publish", help="push a run to the Hugging Face Hub (or --dry-run)")
    sp.add_argument("run_dir")
    sp.add_argument("--repo-id", required=True)
    sp.add_argument("--private", action="store_true")
    sp.add_argument("--revision", default=None)
    sp.add_argument("--commit-message", default=None)
    sp.add_argument("--dry-run", action="store_true")
    sp.add_argument("--out", default=None, help="with --dry-run: where to write what would be pushed")
    sp.set_defaults(func=cmd_publish)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except ConflictIEError as exc:
        if args.debug:
            raise
        print(f"conflict-ie: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # A file or folder the system refused (missing, not writable, disk full): the user's to fix, not a bug.
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"conflict-ie: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("conflict-ie: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
