"""Character spans <-> sub-token labels, and overlapping windows over long documents.

One document is tokenized once, without special tokens, through the fast
tokenizer's offset mapping (no hand-written tokenization); windows are slices
of that token sequence with ``stride`` tokens of overlap, wrapped in the
model's own special tokens. Labels are given per *word* (the tokenizer's
pre-tokenizer words): the word's first sub-token carries the BIO tag and the
others ``-100``, or all sub-tokens carry it (``label_all_tokens``).

Decoding goes the other way: every word takes its tag from the window in which
it sits most centrally, so an entity across a window edge is seen whole, once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from seqeval.metrics.sequence_labeling import get_entities

from conflict_ie.documents import Document, Span

IGNORE = -100


@dataclass(frozen=True)
class Word:
    """A pre-tokenizer word: its character offsets and its sub-token indices in the document."""

    start: int
    end: int
    first_token: int
    last_token: int  # inclusive


@dataclass(frozen=True)
class TokenizedDocument:
    """A document tokenized once: sub-token ids and offsets, and the words they form."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    words: list[Word]
    token_word: list[int]  # word index of every token


@dataclass
class AlignmentReport:
    """What alignment could not represent exactly; none of it is silent."""

    n_entities: int = 0
    misaligned: list[str] = field(default_factory=list)  # span edge inside a word
    cut_by_window: Counter = field(default_factory=Counter)  # window edge position -> count
    lost: list[str] = field(default_factory=list)  # entity in no window whole

    def summary(self) -> str:
        return (
            f"{self.n_entities} entities; {len(self.misaligned)} with an edge inside a word (labelled by the words "
            f"they cover); {sum(self.cut_by_window.values())} cut by a window edge in some window "
            f"(whole in a neighbour); {len(self.lost)} in no window whole"
        )


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after one sequence (``[CLS]``/``[SEP]``, ``<s>``/``</s>``...)."""
    probe = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(probe) + 1):
        if full[i : i + len(probe)] == probe:
            return full[:i], full[i + len(probe) :]
    raise ValueError("cannot find the special-token template of this tokenizer")


def tokenize_document(text: str, tokenizer) -> TokenizedDocument:
    """Tokenize a whole text once (no truncation) and group its sub-tokens into words.

    Example (any fast tokenizer works; this one is built in the tests):
        >>> # td = tokenize_document("Wagner Group attacked", tok); [(w.start, w.end) for w in td.words]
        >>> # [(0, 6), (7, 12), (13, 21)]
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("a fast tokenizer (with offset mappings) is required")
    enc = tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
    )
    ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    word_ids = enc.word_ids()
    words: list[Word] = []
    token_word: list[int] = []
    prev = None
    for t, (wid, (s, e)) in enumerate(zip(word_ids, offsets)):
        if wid is None:  # a special token inside the text (rare); make it its own word
            wid = ("special", t)
        if wid != prev or not words:
            words.append(Word(s, e, t, t))
        else:
            w = words[-1]
            words[-1] = Word(w.start, max(w.end, e), w.first_token, t)
        token_word.append(len(words) - 1)
        prev = wid
    return TokenizedDocument(ids, offsets, words, token_word)


def window_bounds(tdoc: TokenizedDocument, content_len: int, stride: int) -> list[tuple[int, int]]:
    """Token ranges of overlapping windows: ``stride`` tokens shared between neighbours.

    A window after the first starts at a word's first sub-token, so no window opens
    in the middle of a word.

    Example:
        >>> td = TokenizedDocument(list(range(10)), [(i, i + 1) for i in range(10)],
        ...                        [Word(i, i + 1, i, i) for i in range(10)], list(range(10)))
        >>> window_bounds(td, 4, 2)
        [(0, 4), (2, 6), (4, 8), (6, 10)]
    """
    n = len(tdoc.ids)
    if content_len < 1:
        raise ValueError("max_length leaves no room for text after the special tokens")
    if not 0 <= stride < content_len:
        raise ValueError(f"stride {stride} must be >= 0 and smaller than the window's {content_len} text tokens")
    bounds = []
    start = 0
    while True:
        end = min(start + content_len, n)
        bounds.append((start, end))
        if end >= n:
            break
        nxt = end - stride
        # Move back to the start of the word that token belongs to, but always advance.
        word_start = tdoc.words[tdoc.token_word[nxt]].first_token
        start = word_start if word_start > start else nxt
    return bounds


def word_tags(doc: Document, tdoc: TokenizedDocument, report: AlignmentReport | None = None) -> list[str]:
    """IOB2 tag of every word from the document's character spans.

    A word belongs to a span when they overlap; a span edge that falls inside a word is
    reported (``misaligned``), and the word is labelled with the span.
    """
    tags = ["O"] * len(tdoc.words)
    starts = np.array([w.start for w in tdoc.words])
    ends = np.array([w.end for w in tdoc.words])
    for span in doc.spans:
        inside = np.nonzero((starts < span.end) & (ends > span.start))[0]
        if report is not None:
            report.n_entities += 1
        if len(inside) == 0:
            if report is not None:
                report.lost.append(f"{doc.id}:{span.id} {span.label} {span.start}-{span.end} covers no token")
            continue
        first, last = tdoc.words[inside[0]], tdoc.words[inside[-1]]
        if report is not None and (first.start != span.start or last.end != span.end):
            report.misaligned.append(
                f"{doc.id}:{span.id} {span.label} {doc.text[span.start:span.end]!r} vs words "
                f"{doc.text[first.start:last.end]!r}"
            )
        for k, wi in enumerate(inside):
            tags[wi] = ("B-" if k == 0 else "I-") + span.label
    return tags


def make_windows(
    doc: Document,
    tokenizer,
    *,
    max_length: int,
    stride: int,
    label2id: dict[str, int] | None = None,
    label_all_tokens: bool = False,
    doc_index: int = 0,
    report: AlignmentReport | None = None,
    tdoc: TokenizedDocument | None = None,
) -> list[dict[str, Any]]:
    """Training/inference windows of one document: ``input_ids``, ``attention_mask`` and (with
    ``label2id``) ``labels``, plus bookkeeping (``doc_index``, ``token_start``, ``token_end``).
    """
    tdoc = tdoc or tokenize_document(doc.text, tokenizer)
    prefix, suffix = special_tokens(tokenizer)
    bounds = window_bounds(tdoc, max_length - len(prefix) - len(suffix), stride) if tdoc.ids else [(0, 0)]
    tags = word_tags(doc, tdoc, report) if label2id is not None else None
    if report is not None and label2id is not None:
        _count_cuts(doc, tdoc, bounds, report)
    out = []
    for ws, we in bounds:
        ids = prefix + tdoc.ids[ws:we] + suffix
        row: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": [1] * len(ids),
            "doc_index": doc_index,
            "token_start": ws,
            "token_end": we,
        }
        if tags is not None:
            labels = [IGNORE] * len(prefix)
            for t in range(ws, we):
                w = tdoc.token_word[t]
                word = tdoc.words[w]
                if t == word.first_token:
                    labels.append(label2id[tags[w]])
                elif label_all_tokens:
                    tag = tags[w]
                    # Continuation sub-tokens of a B- word are inside the entity: I-.
                    labels.append(label2id["I-" + tag[2:]] if tag.startswith("B-") else label2id[tag])
                else:
                    labels.append(IGNORE)
            labels += [IGNORE] * len(suffix)
            row["labels"] = labels
        out.append(row)
    return out


def _count_cuts(doc: Document, tdoc: TokenizedDocument, bounds, report: AlignmentReport) -> None:
    if len(bounds) < 2:
        return
    tok_starts = np.array([o[0] for o in tdoc.offsets])
    tok_ends = np.array([o[1] for o in tdoc.offsets])
    for span in doc.spans:
        toks = np.nonzero((tok_starts < span.end) & (tok_ends > span.start))[0]
        if len(toks) == 0:
            continue
        a, b = int(toks[0]), int(toks[-1])
        whole = False
        for ws, we in bounds:
            if ws <= a and b < we:
                whole = True
            elif ws <= b and a < we:  # partly inside this window
                edge = "start" if a < ws else "end"
                report.cut_by_window[f"window {edge}"] += 1
        if not whole:
            report.lost.append(f"{doc.id}:{span.id} {span.label} longer than a window's overlap (stride)")


def pick_central(bounds: Sequence[tuple[int, int]], n_tokens: int) -> np.ndarray:
    """For every token, the index of the window in which it is farthest from an edge.

    Example:
        >>> pick_central([(0, 4), (2, 6)], 6).tolist()
        [0, 0, 0, 1, 1, 1]
    """
    best = np.full(n_tokens, -1)
    best_margin = np.full(n_tokens, -1)
    for k, (ws, we) in enumerate(bounds):
        pos = np.arange(ws, we)
        # The text's own start and end are not window edges: only count distance to inner edges.
        left = pos - ws if ws > 0 else np.full_like(pos, n_tokens + 1)
        right = we - 1 - pos if we < n_tokens else np.full_like(pos, n_tokens + 1)
        margin = np.minimum(left, right)
        better = margin > best_margin[ws:we]
        best[ws:we][better] = k
        best_margin[ws:we][better] = margin[better]
    return best


def spans_from_word_tags(
    tags: Sequence[str], words: Sequence[Word], scores: Sequence[float] | None = None, *, prefix: str = "P",
    text: str | None = None,
) -> list[tuple[Span, float]]:
    """Word-level tags -> character spans, reading chunks the way seqeval does (lenient).

    With ``text``, an entity never continues across a line break: an ``I-`` tag on the first word
    of a new line starts a new entity (headlines and paragraphs are separate units in news text).

    Example:
        >>> ws = [Word(0, 6, 0, 0), Word(7, 12, 1, 1), Word(13, 21, 2, 2)]
        >>> [(s.start, s.end, s.label) for s, _ in spans_from_word_tags(["B-G", "I-G", "O"], ws)]
        [(0, 12, 'G')]
        >>> [(s.start, s.end) for s, _ in spans_from_word_tags(["B-G", "I-G", "O"], ws, text="Wagner\\nGroup x")]
        [(0, 6), (7, 12)]
    """
    if text is not None:
        tags = list(tags)
        for i in range(1, len(tags)):
            if tags[i].startswith("I-") and "\n" in text[words[i - 1].end : words[i].start]:
                tags[i] = "B-" + tags[i][2:]
    out = []
    for n, (label, first, last) in enumerate(get_entities(list(tags))):
        score = float(np.mean(scores[first : last + 1])) if scores is not None else 1.0
        out.append((Span(f"{prefix}{n + 1}", words[first].start, words[last].end, label), score))
    return out


def bio_constraints(id2label: dict[int, str]) -> tuple[np.ndarray, np.ndarray]:
    """Which tag may follow which under BIO (``I-X`` only after ``B-X`` or ``I-X``), and which may start.

    Example:
        >>> allowed, first = bio_constraints({0: "O", 1: "B-G", 2: "I-G"})
        >>> allowed.astype(int).tolist(), first.tolist()
        ([[1, 1, 0], [1, 1, 1], [1, 1, 1]], [True, True, False])
    """
    labels = [id2label[i] for i in range(len(id2label))]
    allowed = np.array([[not cur.startswith("I-") or (prev != "O" and prev[2:] == cur[2:]) for cur in labels]
                        for prev in labels])
    first = np.array([not tag.startswith("I-") for tag in labels])
    return allowed, first


def viterbi(probs: np.ndarray, allowed: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The tag sequence with the highest product of probabilities among those BIO allows.

    No transition scores are learned (the checkpoint stays a plain token classifier that any
    ``transformers`` pipeline loads); the constraint alone repairs what argmax gets wrong, e.g.
    ``B-Person I-Organisation`` or an ``I-`` with no ``B-``. Hand-written because the CRF
    libraries for torch need learned transitions and a custom model class; this is 15 lines of numpy.

    Example:
        >>> allowed, first = bio_constraints({0: "O", 1: "B-G", 2: "I-G"})
        >>> p = np.array([[0.6, 0.3, 0.1], [0.2, 0.1, 0.7]])   # argmax: O I-G (ill-formed)
        >>> viterbi(p, allowed, first).tolist()
        [1, 2]
    """
    n, n_labels = probs.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    log = np.log(np.clip(probs, 1e-12, None))
    penalty = np.where(allowed, 0.0, -np.inf)
    score = np.where(first, log[0], -np.inf)
    back = np.zeros((n, n_labels), dtype=np.int64)
    cols = np.arange(n_labels)
    for i in range(1, n):
        cand = score[:, None] + penalty
        back[i] = cand.argmax(0)
        score = cand[back[i], cols] + log[i]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(score.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


#: How word tags are chosen from sub-token probabilities (saved with the model, read by the Predictor).
DECODINGS = ("viterbi", "argmax")
#: Which sub-tokens give a word its probabilities: its first, or the mean over all of them.
WORD_PROBS = ("first", "mean")


def decode_words(
    tdoc: TokenizedDocument,
    bounds: Sequence[tuple[int, int]],
    window_probs: Sequence[np.ndarray],
    id2label: dict[int, str],
    *,
    decoding: str = "argmax",
    word_probs: str = "first",
    return_probs: bool = False,
) -> tuple[list[str], np.ndarray] | tuple[list[str], np.ndarray, np.ndarray]:
    """Merge window predictions into one tag and score per word.

    ``window_probs[k]`` holds the label probabilities of window ``k``'s text tokens
    (special tokens removed). Each word is read in the window where its first sub-token
    is most central, so a word near one window's edge is read from the neighbour that
    sees its context on both sides. ``word_probs``: the first sub-token's probabilities, or
    the mean over the word's sub-tokens in that window (for models trained with every
    sub-token labelled). ``decoding``: ``argmax`` takes each word's likeliest tag (possibly
    ill-formed, e.g. ``I-X`` after ``O``; lenient scoring reads such tags as seqeval does);
    ``viterbi`` the likeliest well-formed BIO sequence (:func:`viterbi`).
    The score of a word is the probability of the tag it got. ``return_probs``: also return each
    word's probabilities over all tags, ``(n_words, n_labels)`` (for uncertainty scores).
    """
    if decoding not in DECODINGS or word_probs not in WORD_PROBS:
        raise ValueError(f"decoding must be one of {DECODINGS} and word_probs one of {WORD_PROBS}")
    n_words = len(tdoc.words)
    if n_words == 0:
        return ([], np.zeros(0), np.zeros((0, len(id2label)), np.float32)) if return_probs else ([], np.zeros(0))
    owner = pick_central(bounds, len(tdoc.ids))
    first = np.array([w.first_token for w in tdoc.words])
    win = owner[first]
    n_labels = window_probs[0].shape[-1]
    if word_probs == "first":
        probs = np.empty((n_words, n_labels), dtype=np.float32)
        for k, (ws, _we) in enumerate(bounds):
            mine = np.nonzero(win == k)[0]
            if len(mine):
                probs[mine] = window_probs[k][first[mine] - ws]
    else:
        sums = np.zeros((n_words, n_labels), dtype=np.float64)
        counts = np.zeros(n_words)
        token_word = np.asarray(tdoc.token_word)
        for k, (ws, we) in enumerate(bounds):
            # Every token of the window whose word is read in this window.
            toks = np.arange(ws, we)[win[token_word[ws:we]] == k]
            np.add.at(sums, token_word[toks], window_probs[k][toks - ws])
            np.add.at(counts, token_word[toks], 1)
        probs = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
    if decoding == "viterbi":
        best = viterbi(probs, *bio_constraints(id2label))
    else:
        best = probs.argmax(-1)
    tags, scores = [id2label[int(i)] for i in best], probs[np.arange(n_words), best]
    return (tags, scores, probs) if return_probs else (tags, scores)
