"""CoNLL column files (BIO/IOB2, IOB1) -> Documents with exact character offsets.

Token first, tag last, any columns between; a blank line (or a line of only white space
or ``\\r``) ends a sentence; ``-DOCSTART-`` starts a document. The text is rebuilt as
tokens joined by one space, sentences by a new line, so every span's offsets are exact in
the rebuilt text.

Columns are separated as the file separates them: by tabs when any token line holds a
tab (then every token line must, and a token may hold spaces, ``New York``), else by
runs of ASCII spaces. No other character separates columns, so a token with a
no-break space (``10\\u00a0000``) or a thin space is kept whole. Lines are the file's
``\\n`` lines (``\\r\\n`` read the same; a file with only ``\\r`` line ends too), so line
numbers in messages are the ones an editor shows, whatever U+2028, U+0085 or form feeds
the text holds. A byte-order mark is dropped at the start of the file and, counted, at the
start of any line (where concatenating files leaves one).

Chunks are read with ``seqeval``'s own reader (``get_entities``), so an IOB1 file or a
stray ``I-`` tag yields exactly the entities seqeval would score; each such repair is
counted in the report. An entity whose text begins or ends with white space (a token
such as ``\\u00a0Kyiv``) is refused, naming its line; with ``lenient`` it is trimmed (or
dropped when it is only white space), counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from seqeval.metrics.sequence_labeling import get_entities

from conflict_ie.documents import Document, Provenance, Span, trimmed
from conflict_ie.errors import InputError
from conflict_ie.schema import LabelSchema
from conflict_ie.textfile import read_text

DOCSTART = "-DOCSTART-"


@dataclass
class ConllReport:
    n_documents: int = 0
    n_sentences: int = 0
    n_tokens: int = 0
    n_lines: int = 0
    n_docstart: int = 0
    #: ``tab`` or ``space``: how the file separates its columns.
    separator: str = ""
    repaired: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"read {self.n_documents} document(s), {self.n_sentences} sentence(s), {self.n_tokens} token(s)"
        if self.repaired:
            text += "; repaired: " + ", ".join(f"{k}={v}" for k, v in sorted(self.repaired.items()))
        if self.skipped:
            text += "; skipped: " + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items()))
        return "\n".join([text] + [f"warning: {w}" for w in self.warnings])

    def found(self) -> str:
        """What the file held, in words: for the message when it gave no document.

        Example:
            >>> ConllReport(n_lines=3, n_docstart=2).found()
            'no token lines: 2 -DOCSTART- line(s), the rest blank'
        """
        if self.n_docstart:
            return f"no token lines: {self.n_docstart} {DOCSTART} line(s), the rest blank"
        return "no token lines: the file is empty or blank"


@dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    first_line: int


def file_lines(text: str) -> list[str]:
    """The file's lines as an editor numbers them: split at ``\\n`` only, one trailing ``\\r`` dropped.

    Example:
        >>> file_lines("a O\\r\\nb\\u2028c O\\x0c\\nd O")
        ['a O', 'b\\u2028c O\\x0c', 'd O']
    """
    if "\n" not in text and "\r" in text:
        return text.split("\r")  # classic Mac OS line ends
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def _is_docstart(line: str) -> bool:
    # The first column is -DOCSTART-, whichever of tab or space separates the columns.
    head = line.lstrip(" \t")
    return head.startswith(DOCSTART) and head[len(DOCSTART):len(DOCSTART) + 1] in ("", " ", "\t")


def read_sentences(path: str | Path, report: ConllReport | None = None) -> list[list[Sentence]]:
    """Split a CoNLL file into documents of sentences (tolerant of the usual variations)."""
    path = Path(path)
    report = report if report is not None else ConllReport()
    lines = file_lines(read_text(path))
    report.n_lines = len(lines)
    for lineno, line in enumerate(lines, start=1):
        if line.startswith("\ufeff"):
            lines[lineno - 1] = line.lstrip("\ufeff")
            report.repaired["byte_order_mark"] += 1
            report.warnings.append(f"{path}, line {lineno}: a byte-order mark (U+FEFF) at the line's start was "
                                   "dropped (files concatenated?)")
    content = [(n, line) for n, line in enumerate(lines, start=1) if line.strip() and not _is_docstart(line)]
    first_tab = next((n for n, line in content if "\t" in line), None)
    report.separator = "tab" if first_tab is not None else "space"
    docs: list[list[Sentence]] = [[]]
    tokens: list[str] = []
    tags: list[str] = []
    start_line = 1

    def flush() -> None:
        if tokens:
            docs[-1].append(Sentence(tuple(tokens), tuple(tags), start_line))
            tokens.clear()
            tags.clear()

    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            flush()
            continue
        if _is_docstart(line):
            report.n_docstart += 1
            flush()
            if docs[-1]:
                docs.append([])
            continue
        if first_tab is not None:
            if "\t" not in line:
                raise InputError(
                    f"line {lineno}: {line.strip()!r} has no tab, but the file separates columns with tabs (line "
                    f"{first_tab} does), so its tokens may hold spaces and this line cannot be read safely",
                    source=str(path))
            cols = [c.strip(" ") for c in line.split("\t")]
            while cols and not cols[-1]:
                cols.pop()  # trailing tabs
        else:
            cols = [c for c in line.split(" ") if c]
        if len(cols) < 2:
            raise InputError(f"line {lineno}: {line.strip()!r} has one column; token first, tag last", source=str(path))
        if not cols[0]:
            raise InputError(f"line {lineno}: the token (first column) is empty", source=str(path))
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


def read_conll(path: str | Path, schema: LabelSchema | None = None, *,
               lenient: bool = False) -> tuple[list[Document], ConllReport]:
    """Read a CoNLL file into Documents. A file with no token line gives none (see :meth:`ConllReport.found`).

    Example:
        >>> import tempfile, os
        >>> f = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
        >>> _ = f.write("New York\\tB-LOCATION\\r\\n10\\u00a0000\\tO\\r\\nfled\\tO\\r\\n")
        >>> f.close()
        >>> docs, rep = read_conll(f.name)
        >>> [(docs[0].text[s.start:s.end], s.label) for s in docs[0].spans], docs[0].text
        ([('New York', 'LOCATION')], 'New York 10\\xa0000 fled')
        >>> os.unlink(f.name)
    """
    path = Path(path)
    report = ConllReport()
    documents = []
    known = set(schema.entity_labels) if schema else None
    for d_index, sentences in enumerate(read_sentences(path, report)):
        pieces: list[str] = []
        spans: list[Span] = []
        offset = 0
        for sentence in sentences:
            starts = []
            for tok in sentence.tokens:
                starts.append(offset)
                offset += len(tok) + 1  # one space after each token (the last becomes the new line)
            for tag_index, tag in enumerate(sentence.tags):
                if tag != "O" and (len(tag) < 3 or tag[1] != "-" or tag[0] not in "BIES"):
                    raise InputError(
                        f"line {sentence.first_line + tag_index}: tag {tag!r} is not O or B-/I-/E-/S-LABEL",
                        source=str(path),
                    )
            report.repaired.update(_repairs(sentence.tags))
            line_text = " ".join(sentence.tokens)
            base = starts[0] if starts else offset
            for label, first, last in get_entities(list(sentence.tags)):
                line = sentence.first_line + first
                if known is not None and label not in known:
                    raise InputError(
                        f"line {line}: label {label!r} is not in schema "
                        f"{schema.name!r}; known labels: {sorted(known)}",
                        source=str(path),
                    )
                start = starts[first]
                end = starts[last] + len(sentence.tokens[last])
                span = _edges(path, line, label, line_text, start - base, end - base, lenient, report)
                if span is not None:
                    spans.append(Span(f"T{len(spans) + 1}", span[0] + base, span[1] + base, label))
            pieces.append(line_text)
            report.n_sentences += 1
            report.n_tokens += len(sentence.tokens)
        text = "\n".join(pieces)
        doc_id = f"{path.stem}-{d_index + 1:04d}"
        documents.append(Document(doc_id, text, tuple(spans), (), Provenance(source=str(path))))
    report.n_documents = len(documents)
    return documents, report


def _edges(path: Path, line: int, label: str, text: str, start: int, end: int, lenient: bool,
           report: ConllReport) -> tuple[int, int] | None:
    """An entity's offsets in its sentence, with white space at its edges refused, or trimmed (lenient)."""
    new_start, new_end = trimmed(text, start, end)
    if (new_start, new_end) == (start, end):
        return start, end
    where = f"line {line}: {label} entity {text[start:end]!r}"
    if not lenient:
        what = "is only white space" if new_start == new_end else "begins or ends with white space"
        raise InputError(f"{where} {what}, which the annotation guidelines forbid (--lenient trims it)",
                         source=str(path))
    if new_start == new_end:
        report.skipped["white_space_span"] += 1
        report.warnings.append(f"{path}, {where} is only white space; dropped")
        return None
    report.repaired["white_space_trimmed"] += 1
    report.warnings.append(f"{path}, {where} trimmed to {text[new_start:new_end]!r}")
    return new_start, new_end
