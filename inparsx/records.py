"""Typed records shared by every stage: the field's vocabulary (qid, docid, qrels, run).

Shapes follow ir_datasets' generic records (``GenericDoc``, ``GenericQuery``, ``GenericQrel``,
``GenericScoredDoc``). A *run* in memory is ``dict[qid, dict[docid, score]]`` (ranx's layout); *qrels* are
``dict[qid, dict[docid, relevance]]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Run = dict[str, dict[str, float]]
"""A ranking: ``{qid: {docid: score}}``, higher score = more relevant."""

Qrels = dict[str, dict[str, int]]
"""Relevance judgements: ``{qid: {docid: relevance}}`` (graded, integers)."""


@dataclass(frozen=True, slots=True)
class Document:
    """A corpus document. ``title`` may be empty."""

    doc_id: str
    text: str
    title: str = ""

    @property
    def full_text(self) -> str:
        """Title and text joined by a space, as BEIR's flat BM25 and most rerankers see a document."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass(frozen=True, slots=True)
class Query:
    """A query (topic)."""

    query_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Qrel:
    """One relevance judgement."""

    query_id: str
    doc_id: str
    relevance: int


@dataclass(frozen=True, slots=True)
class ScoredDoc:
    """One line of a run: a document scored for a query."""

    query_id: str
    doc_id: str
    score: float


@dataclass(slots=True)
class SyntheticQuery:
    """One synthetic query, as ``generate/queries.jsonl`` stores it (one JSON object per line).

    Keeps the fields the InPars toolkit writes so files stay comparable: ``doc_id``, ``query``, ``log_probs``
    (natural-log probability of each generated token), ``score`` (their mean, eq. 1 of the InPars toolkit
    paper, Abonizio et al. 2023), ``prompt_text`` and ``generator``; plus ``fewshot_examples`` (query ids of
    the few-shot examples, when the prompt used some), ``query_id`` (unique per record), ``positive_text``
    and free-form ``extra``.

    ``positive_text`` is the text the triples stage uses as the query's positive instead of the source
    document's ``full_text``; ``None`` means the whole document. The ``ict`` generator sets it to the document
    with the query sentence removed (Lee et al., 2019), so the positive does not contain its query verbatim.

    ``extra["judged_relevant"]`` (optional, a list of docids): other documents known to be relevant to the
    query, e.g. every document the qrels judge relevant to a gold query (the ``qrels`` generator writes it);
    the triples stage never draws them as negatives (see :meth:`judged_relevant`).
    """

    query_id: str
    doc_id: str
    query: str
    log_probs: list[float] = field(default_factory=list)
    score: float | None = None
    prompt_text: str = ""
    generator: str = ""
    fewshot_examples: list[str] = field(default_factory=list)
    positive_text: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)

    def judged_relevant(self) -> set[str]:
        """The documents relevant to this query as far as the record knows: its own ``doc_id`` and those of
        ``extra["judged_relevant"]``."""
        return {self.doc_id, *map(str, self.extra.get("judged_relevant") or ())}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyntheticQuery:
        """Build a record from a parsed JSON object; unknown keys go to ``extra``.

        Raises:
            KeyError: when ``doc_id`` or ``query`` is missing.
        """
        known = {k: data[k] for k in cls.__slots__ if k in data}
        extra = dict(known.pop("extra", {}) or {})
        extra.update({k: v for k, v in data.items() if k not in cls.__slots__})
        known.setdefault("query_id", f"{data['doc_id']}-0")
        return cls(
            doc_id=str(data["doc_id"]),
            query=data["query"],
            extra=extra,
            **{k: v for k, v in known.items() if k not in ("doc_id", "query")},
        )
