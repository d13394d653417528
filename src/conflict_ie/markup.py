"""A small inline markup for writing annotated articles by hand (and test fixtures).

Label Studio is where people annotate; this markup is for texts written
*with* their annotations, such as the project's bundled corpus, where typing
character offsets by hand would be error-prone. ``{TEXT|LABEL}`` marks a span;
``{TEXT|LABEL#ID}`` gives it an id that relations can name;
``{TEXT|LABEL#ID=CHOICE}`` (or ``{TEXT|LABEL=CHOICE}``) sets the schema's single
attribute for that label (e.g. ``casualty_type``). Curly braces do not occur in
news text, so no escaping is needed.

An article file holds one or more articles::

    === article-id
    title: A headline
    conflict: Sahel

    {Jihadist fighters|ARMED_GROUP#g1} killed {12 soldiers|CASUALTY_FIGURE#c1=killed} ...

    --- relations
    c1 PERPETRATOR g1

Header lines (``key: value``) go to the task's ``meta`` (``title`` and ``source_url``
go to ``data``); ``text_file: PATH`` asserts that the stripped text equals that file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from conflict_ie.documents import Document, Provenance, Relation, Span
from conflict_ie.errors import InputError
from conflict_ie.schema import LabelSchema

_SPAN = re.compile(r"\{([^{}|]+)\|([A-Za-z_][\w-]*)(?:#([\w-]+))?(?:=([\w-]+))?\}")
_DATA_KEYS = {"title", "source_url"}


@dataclass(frozen=True)
class MarkupArticle:
    id: str
    header: dict[str, str]
    document: Document


def parse_markup(body: str, schema: LabelSchema | None = None, *, doc_id: str = "doc") -> Document:
    """Strip the markup from ``body`` and return the Document with exact offsets.

    Example:
        >>> d = parse_markup("{Wagner Group|ARMED_GROUP#g} killed {two men|CASUALTY_FIGURE#c=killed}.\\n"
        ...                  "--- relations\\nc PERPETRATOR g", LabelSchema.load("conflict"))
        >>> d.text, [(s.label, s.start, s.end) for s in d.spans], d.relations[0].label
        ('Wagner Group killed two men.', [('ARMED_GROUP', 0, 12), ('CASUALTY_FIGURE', 20, 27)], 'PERPETRATOR')
    """
    text_part, _, rel_part = body.partition("\n--- relations")
    pieces: list[str] = []
    spans: list[Span] = []
    pos = 0
    length = 0
    for n, m in enumerate(_SPAN.finditer(text_part)):
        before = text_part[pos : m.start()]
        pieces.append(before)
        length += len(before)
        surface, label, sid, choice = m.groups()
        attributes = {}
        if choice is not None:
            attrs = schema.attributes_for(label) if schema else ()
            if len(attrs) != 1:
                raise InputError(f"{m.group(0)!r}: label {label} has no single attribute to set to {choice!r}",
                                 task=doc_id)
            attributes[attrs[0].name] = choice
        spans.append(Span(sid or f"{doc_id}-s{n}", length, length + len(surface), label, attributes))
        pieces.append(surface)
        length += len(surface)
        pos = m.end()
    pieces.append(text_part[pos:])
    text = "".join(pieces)
    for stray in ("{", "}"):
        if stray in text:
            at = text.index(stray)
            raise InputError(f"unparsed markup near {text[max(0, at - 30): at + 30]!r}", task=doc_id)
    relations = []
    for line in rel_part.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise InputError(f"relation line {line!r} is not 'HEAD LABEL TAIL'", task=doc_id)
        head, label, tail = parts
        relations.append(Relation(head, tail, label))
    return Document(doc_id, text, tuple(spans), tuple(relations))


def read_markup_file(path: str | Path, schema: LabelSchema | None = None) -> list[MarkupArticle]:
    """Read every ``=== id`` article of a markup file.

    The body runs from the first blank line after the header to the next ``===``;
    leading and trailing blank lines are removed, inner new lines are kept.
    """
    path = Path(path)
    raw = path.read_text(encoding="utf-8")
    articles = []
    for chunk in re.split(r"^=== ", raw, flags=re.M)[1:]:
        first, _, rest = chunk.partition("\n")
        art_id = first.strip()
        header: dict[str, str] = {}
        lines = rest.split("\n")
        i = 0
        while i < len(lines) and lines[i].strip():
            key, sep, value = lines[i].partition(":")
            if not sep:
                raise InputError(f"header line {lines[i]!r} is not 'key: value'", source=path, task=art_id)
            header[key.strip()] = value.strip()
            i += 1
        body = "\n".join(lines[i:]).strip("\n")
        doc = parse_markup(body, schema, doc_id=art_id)
        if "text_file" in header:
            expected = (path.parent / header["text_file"]).read_text(encoding="utf-8")
            if doc.text != expected and doc.text.strip() == expected.strip():
                doc = _shift(doc, expected)
            if doc.text != expected:
                at = next(i for i, (a, b) in enumerate(zip(doc.text + "\0", expected + "\0")) if a != b)
                raise InputError(
                    f"text differs from {header['text_file']} at character {at}: "
                    f"{doc.text[at - 20: at + 20]!r} vs {expected[at - 20: at + 20]!r}",
                    source=path,
                    task=art_id,
                )
        data = {k: v for k, v in header.items() if k in _DATA_KEYS}
        meta = {k: v for k, v in header.items() if k not in _DATA_KEYS and k != "text_file"}
        doc = Document(doc.id, doc.text, doc.spans, doc.relations,
                       Provenance(source=str(path), fields={"data": data, "meta": meta}))
        articles.append(MarkupArticle(art_id, header, doc))
    return articles


def _shift(doc: Document, expected: str) -> Document:
    # The file may keep leading white space that the markup body strips.
    offset = expected.index(doc.text.strip())
    lead = len(doc.text) - len(doc.text.lstrip())
    delta = offset - lead
    spans = tuple(Span(s.id, s.start + delta, s.end + delta, s.label, s.attributes) for s in doc.spans)
    return Document(doc.id, expected, spans, doc.relations, doc.provenance)
