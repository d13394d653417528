"""CoNLL column files (BIO/IOB2, IOB1) -> Documents with exact character offsets.

Token first, tag last, any columns between; tabs or spaces; a blank line (or a
line of only white space or ``\\r``) ends a sentence; ``-DOCSTART-`` starts a
document. The text is rebuilt as tokens joined by one space, sentences by a
new line, so every span's offsets are exact in the rebuilt text.

Chunks are read with ``seqeval``'s own reader (``get_entities``), so an IOB1
file or a stray ``I-`` tag yields exactly the entities seqeval would score;
each such repair is counted in the report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from seqeval.metrics.sequence_labeling import get_entities

from conflict_ie.documents import Document, Provenance, Span
from conflict_ie.errors import InputError
from conflict_ie.schema import LabelSchema

DOCSTART = "-DOCSTART-"


@dataclass
class ConllReport:
    n_documents: int = 0
    n_sentences: int = 0
    n_tokens: int = 0
    repaired: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        text = f"read {self.n_documents} document(s), {self.n_sentences} sentence(s), {self.n_tokens} token(s)"
        if self.repaired:
            text += "; repaired tags: " + ", ".join(f"{k}={v}" for k, v in sorted(self.repaired.items()))
        return text


@dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    first_line: int


def read_sentences(path: str | Path) -> list[list[Sentence]]:
    """Split a CoNLL file into documents of sentences (tolerant of the usual variations)."""
    path = Path(path)
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", source=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=path) from None
    docs: list[list[Sentence]] = [[]]
    tokens: list[str] = []
    tags: list[str] = []
    start_line = 1

    def flush() -> None:
        if tokens:
            docs[-1].append(Sentence(tuple(tokens), tuple(tags), start_line))
            tokens.clear()
            tags.clear()

    # splitlines() also splits on lone "\r" and keeps no terminators: Windows files read the same.
    for lineno, line in enumerate(raw.splitlines(), start=1):
        cols = line.split()
        if not cols:
            flush()
            continue
        if cols[0] == DOCSTART:
            flush()
            if docs[-1]:
                docs.append([])
            continue
        if len(cols) < 2:
            raise InputError(f"line {lineno}: {line.strip()!r} has one column; token first, tag last", source=path)
        if not tokens:
            start_line = lineno
        tokens.append(cols[0])
        tags.append(cols[-1])
    flush()
    return [d for d in docs if d]


def _repairs(tags: tuple[str, ...]) -> Counter:
    """Count tags that seqeval reads differently from strict IOB2."""
    out: Counter = Counter()
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and not (prev[:2] in ("B-", "I-") and prev[2:] == tag[2:]):
            out["I_without_B"] += 1
        prev = tag
    return out


def read_conll(path: str | Path, schema: LabelSchema | None = None) -> tuple[list[Document], ConllReport]:
    """Read a CoNLL file into Documents.

    Example:
        >>> import tempfile, os
        >>> f = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
        >>> _ = f.write("Wagner NNP B-ARMED_GROUP\\r\\nGroup NNP I-ARMED_GROUP\\r\\nattacked VBD O\\r\\n")
        >>> f.close()
        >>> docs, rep = read_conll(f.name)
        >>> [(docs[0].text[s.start:s.end], s.label) for s in docs[0].spans]
        [('Wagner Group', 'ARMED_GROUP')]
        >>> os.unlink(f.name)
    """
    path = Path(path)
    report = ConllReport()
    documents = []
    known = set(schema.entity_labels) if schema else None
    for d_index, sentences in enumerate(read_sentences(path)):
        pieces: list[str] = []
        spans: list[Span] = []
        offset = 0
        for sentence in sentences:
            starts = []
            for t_index, tok in enumerate(sentence.tokens):
                starts.append(offset)
                offset += len(tok) + 1  # one space after each token (the last becomes the new line)
            for tag_index, tag in enumerate(sentence.tags):
                if tag != "O" and (len(tag) < 3 or tag[1] != "-" or tag[0] not in "BIES"):
                    raise InputError(
                        f"line {sentence.first_line + tag_index}: tag {tag!r} is not O or B-/I-/E-/S-LABEL",
                        source=path,
                    )
            report.repaired.update(_repairs(sentence.tags))
            for label, first, last in get_entities(list(sentence.tags)):
                if known is not None and label not in known:
                    raise InputError(
                        f"line {sentence.first_line + first}: label {label!r} is not in schema "
                        f"{schema.name!r}; known labels: {sorted(known)}",
                        source=path,
                    )
                start = starts[first]
                end = starts[last] + len(sentence.tokens[last])
                spans.append(Span(f"T{len(spans) + 1}", start, end, label))
            pieces.append(" ".join(sentence.tokens))
            report.n_sentences += 1
            report.n_tokens += len(sentence.tokens)
        text = "\n".join(pieces)
        doc_id = f"{path.stem}-{d_index + 1:04d}"
        documents.append(Document(doc_id, text, tuple(spans), (), Provenance(source=str(path))))
    report.n_documents = len(documents)
    return documents, report

