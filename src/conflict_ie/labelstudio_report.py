"""What reading a Label Studio export did: documents read, what was skipped or repaired, and why.

Nothing is lost silently: every task, region or relation left out is counted by reason in
``skipped`` (with a message naming the file, task and region), every region kept after a
repair in ``repaired`` (with a warning). ``conflict_ie.labelstudio`` re-exports these names.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from conflict_ie.documents import Document
from conflict_ie.errors import InputError

#: Why a task gave no document, in words (the keys of :attr:`ReadReport.unused`).
UNUSED = {
    "cancelled": "only cancelled annotations",
    "drafts": "only drafts",
    "unannotated": "no annotation",
    "other_annotators": "no annotation by the annotator the policy asks for",
}


@dataclass
class ReadReport:
    """What reading skipped or noticed, so that nothing is lost silently."""

    n_tasks: int = 0
    n_documents: int = 0
    skipped: Counter = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Regions kept after a repair (e.g. ``utf16_offsets_repaired``), by reason; each also has a warning.
    repaired: Counter = field(default_factory=Counter)
    #: Tasks skipped as ``no_annotation``, by why (a key of :data:`UNUSED`).
    unused: Counter = field(default_factory=Counter)

    def add(self, reason: str, message: str) -> None:
        self.skipped[reason] += 1
        self.messages.append(message)

    def repair(self, reason: str, message: str) -> None:
        """Count a region that was kept after fixing it, and say so in the warnings.

        Example:
            >>> r = ReadReport(); r.repair("utf16_offsets_repaired", "task 3, region a: offsets 2-6 read as 1-5")
            >>> r.repaired["utf16_offsets_repaired"], r.warnings[0].startswith("task 3")
            (1, True)
        """
        self.repaired[reason] += 1
        self.warnings.append(message)

    def merge(self, other: "ReadReport") -> None:
        self.n_tasks += other.n_tasks
        self.n_documents += other.n_documents
        self.skipped.update(other.skipped)
        self.repaired.update(other.repaired)
        self.unused.update(other.unused)
        self.messages += other.messages
        self.warnings += other.warnings

    def summary(self) -> str:
        """One paragraph for the terminal."""
        lines = [f"read {self.n_documents} document(s) from {self.n_tasks} task(s)"]
        if self.skipped:
            lines.append("skipped: " + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())))
        if self.repaired:
            lines.append("repaired: " + ", ".join(f"{k}={v}" for k, v in sorted(self.repaired.items())))
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def found(self) -> str:
        """What the export held, in words: for the message when it gave no document.

        Example:
            >>> r = ReadReport(n_tasks=3); r.unused.update(cancelled=2, drafts=1)
            >>> r.found()
            '3 task(s), none usable: 2 with only cancelled annotations, 1 with only drafts'
            >>> ReadReport().found()
            'no tasks at all (an empty list)'
        """
        if not self.n_tasks:
            return "no tasks at all (an empty list)"
        parts = [f"{n} with {UNUSED.get(why, why)}" for why, n in self.unused.most_common()]
        other = {k: v for k, v in self.skipped.items() if k != "no_annotation"}
        parts += [f"{n} skipped as {reason}" for reason, n in sorted(other.items())]
        head = f"{self.n_tasks} task(s), none usable" if not self.n_documents else f"{self.n_tasks} task(s)"
        return head + (": " + ", ".join(parts) if parts else "")


@dataclass(frozen=True)
class ReadResult:
    documents: list[Document]
    report: ReadReport
    source: str = "<tasks>"

    def require_documents(self) -> list[Document]:
        """The documents, or an :class:`InputError` naming the file and what it held when there are none.

        Example:
            >>> ReadResult([], ReadReport(n_tasks=0), "a.json").require_documents()
            Traceback (most recent call last):
              ...
            conflict_ie.errors.InputError: a.json: no documents to read: no tasks at all (an empty list)
        """
        if not self.documents:
            raise InputError(f"no documents to read: {self.report.found()}", source=self.source, reason="empty")
        return self.documents
