"""``conflict-ie corpus build``: its inputs and options, checked before anything is read, and the build.

Options are checked first (a typo should not cost reading the exports): the ``--policy``, the
``--ratios``, the ``--out`` folder, the split names of ``SPLIT=FILE``. Every input must give at
least one document, and one article may not come twice (:func:`conflict_ie.corpus.deduplicate`).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from conflict_ie.errors import ConfigError, InputError


def print_report(report) -> None:
    """A read report on standard error: the summary, then up to 50 of the things skipped."""
    print(report.summary(), file=sys.stderr)
    for message in report.messages[:50]:
        print(f"  skipped: {message}", file=sys.stderr)
    if len(report.messages) > 50:
        print(f"  ... and {len(report.messages) - 50} more", file=sys.stderr)


SPLIT_NAMES = ("train", "validation", "test")


def _split_arg(value: str) -> tuple[str | None, str]:
    """``train=path`` -> (``train``, ``path``); ``path`` -> (None, ``path``); ``dev=path`` is refused.

    Example:
        >>> _split_arg("test=a.json"), _split_arg("a.json")
        (('test', 'a.json'), (None, 'a.json'))
    """
    name, sep, path = value.partition("=")
    if sep and name in SPLIT_NAMES:
        if not path:
            raise ConfigError(f"{value!r} names the {name} split but no file; write {name}=FILE")
        return name, path
    if sep and name.isidentifier() and not Path(value).exists():
        raise ConfigError(f"{value!r}: {name!r} is not a split; name one of {', '.join(SPLIT_NAMES)} (train=FILE), "
                          "or give a path alone")
    return None, value


def _ratios(value: str) -> tuple[float, float, float]:
    """``--ratios`` as three finite, non-negative numbers (:class:`SplitSpec` checks that they sum to 1).

    Example:
        >>> _ratios("0.7/0.2/0.1")
        (0.7, 0.2, 0.1)
    """
    usage = f"--ratios is TRAIN/VALIDATION/TEST, three numbers >= 0 that sum to 1 (e.g. 0.8/0.1/0.1); got {value!r}"
    try:
        ratios = tuple(float(x) for x in value.split("/"))
    except ValueError:
        raise ConfigError(usage) from None
    if len(ratios) != 3 or not all(math.isfinite(r) and r >= 0 for r in ratios):
        raise ConfigError(usage)
    return ratios  # type: ignore[return-value]


def _writable_folder(value: str, option: str = "--out") -> Path:
    """The folder ``value`` if it is one or can be made: not a file, not under a file, writable."""
    out = Path(value)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{option} {value} is a file; give a folder (it is created if missing)")
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{option} {value} cannot be made: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {value} cannot be written: no write permission in {probe}")
    return out


def read_inputs(args, schema):
    """Read --input (Label Studio) and --conll files; returns [(split or None, docs, source)].

    An input that gives no document is refused, with what it held (an empty list, only cancelled
    annotations or drafts, only ``-DOCSTART-`` lines).
    """
    from conflict_ie.conll import read_conll
    from conflict_ie.labelstudio import read_labelstudio

    out = []
    for value in args.input or ():
        split, path = _split_arg(value)
        res = read_labelstudio(path, schema, text_field=args.text_field, policy=args.policy, lenient=args.lenient)
        print_report(res.report)
        out.append((split, res.require_documents(), path))
    for value in args.conll or ():
        split, path = _split_arg(value)
        docs, rep = read_conll(path, schema, lenient=args.lenient)
        print(rep.summary(), file=sys.stderr)
        if not docs:
            raise InputError(f"no documents to read: {rep.found()}", source=path, reason="empty")
        out.append((split, docs, path))
    if not out:
        raise InputError("give at least one --input EXPORT.json or --conll FILE")
    return out


def cmd_corpus_build(args) -> int:
    from conflict_ie.corpus import SPLITS, SplitSpec, build_corpus, deduplicate, save_corpus, split_documents
    from conflict_ie.labelstudio import check_policy
    from conflict_ie.schema import LabelSchema

    # Options first: a typo should not cost reading the exports.
    check_policy(args.policy)
    spec = SplitSpec(*_ratios(args.ratios), seed=args.seed, by_field=args.split_field)
    out = _writable_folder(args.out)
    schema = LabelSchema.load(args.schema)
    parts = read_inputs(args, schema)
    named = [p for p in parts if p[0] is not None]
    if named and len(named) != len(parts):
        raise InputError("when one input names its split (train=FILE), every input must")
    if named:
        given = {s: [d for split, docs, _ in parts if split == s for d in docs] for s in SPLITS}
    else:
        given = {"": [d for _, ds, _ in parts for d in ds]}
    # One article twice (in one file, or in two splits) is refused, or with --lenient dropped and counted.
    kept, duplicates = deduplicate(given, lenient=args.lenient)
    if duplicates.dropped:
        print(duplicates.summary(), file=sys.stderr)
        for message in duplicates.messages[:50]:
            print(f"  dropped: {message}", file=sys.stderr)
    splits = kept if named else split_documents(kept[""], spec)
    corpus = build_corpus(splits, schema)
    try:
        save_corpus(corpus, schema, out, sources=[p[2] for p in parts])
    except OSError as exc:
        raise ConfigError(f"--out {args.out}: cannot write the corpus: {exc.strerror or exc}") from None
    print(f"wrote {args.out}: " + ", ".join(f"{k}={len(v)}" for k, v in corpus.items()) + " documents")
    if args.push_to_hub:
        try:
            corpus.push_to_hub(args.push_to_hub)
        except Exception as exc:  # the hub client has many error types; all mean the push failed
            raise InputError(f"push to the hub failed (a network and a token are needed): {exc}") from None
    return 0
