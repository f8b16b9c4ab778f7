"""Reading training triples (``triples/triples.jsonl``) and turning them into the rows each loss expects.

Heavy libraries (``datasets``) are imported inside the functions that build Hugging Face datasets.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from inparsx.errors import DataError
from inparsx.io import read_jsonl
from inparsx.triples.base import Triple

TRIPLE_FIELDS = ("query_id", "query", "pos_id", "pos_text", "neg_ids", "neg_texts")


def read_triples(path: str | Path, limit: int | None = None) -> list[Triple]:
    """Read a JSON-lines file of :class:`~inparsx.triples.base.Triple` records (one object per line).

    Args:
        path: ``triples.jsonl`` as the triples stage writes it.
        limit: keep only the first ``limit`` triples (file order).

    Raises:
        DataError: a missing file, a line that is not a JSON object, a missing field, an empty query or
            positive, or ``neg_ids``/``neg_texts`` of different lengths (file and line named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "triples file not found (run the triples stage, or pass --triples FILE)")
    triples: list[Triple] = []
    for number, obj in read_jsonl(path):
        triples.append(_triple(obj, path, number))
        if limit is not None and len(triples) >= limit:
            break
    if not triples:
        raise DataError(path, "no triples in file")
    return triples


def _triple(obj: dict, path: Path, number: int) -> Triple:
    missing = [f for f in ("query", "pos_text") if not obj.get(f)]
    if missing:
        raise DataError(path, f"triple without {', '.join(missing)}", number)
    neg_texts = tuple(obj.get("neg_texts") or ())
    neg_ids = tuple(str(i) for i in obj.get("neg_ids") or ())
    if neg_ids and len(neg_ids) != len(neg_texts):
        raise DataError(path, f"neg_ids has {len(neg_ids)} entries but neg_texts has {len(neg_texts)}", number)
    neg_scores = tuple(float(s) for s in obj.get("neg_scores") or ())
    if neg_scores and len(neg_scores) != len(neg_texts):
        raise DataError(path, f"neg_scores has {len(neg_scores)} entries but neg_texts has {len(neg_texts)}", number)
    pos_score = obj.get("pos_score")
    return Triple(
        query_id=str(obj.get("query_id", number)),
        query=obj["query"],
        pos_id=str(obj.get("pos_id", "")),
        pos_text=obj["pos_text"],
        neg_ids=neg_ids,
        neg_texts=neg_texts,
        pos_score=None if pos_score is None else float(pos_score),
        neg_scores=neg_scores,
    )


def require_negatives(triples: Sequence[Triple], need: int, path: str | Path, what: str) -> None:
    """Check every triple has at least ``need`` negatives.

    Raises:
        DataError: naming the first triple with too few negatives and the option (``what``) that asks for them.
    """
    for index, triple in enumerate(triples, 1):
        if len(triple.neg_texts) < need:
            raise DataError(
                path, f"query {triple.query_id!r} has {len(triple.neg_texts)} negatives but {what} needs {need}", index
            )


def negatives_per_query(triples: Sequence[Triple], option: int | None) -> int:
    """The hard negatives per query a trainer uses: ``option`` when set, else every negative the triples
    carry: the fewest any triple has, when they differ (a message then says how many triples have more)."""
    if option is not None:
        return option
    counts = [len(t.neg_texts) for t in triples]
    fewest = min(counts, default=0)
    if any(c > fewest for c in counts):
        from inparsx.progress import console

        console.print(
            f"train: {fewest} negative(s) per query, the fewest any triple has "
            f"({sum(c > fewest for c in counts)} of {len(counts)} triples carry more)"
        )
    return fewest


def pointwise_rows(triples: Sequence[Triple], num_negatives: int) -> dict[str, list]:
    """Columns ``query``, ``document``, ``label``: per triple, the positive (1.0) then up to ``num_negatives``
    negatives (0.0); with one negative this is the 1:1 balance of the InPars training scripts (Bonifacio et
    al. 2022). The trainer's sampler shuffles the rows (seeded)."""
    rows: dict[str, list] = {"query": [], "document": [], "label": []}
    for triple in triples:
        pairs = [(triple.pos_text, 1.0)] + [(neg, 0.0) for neg in triple.neg_texts[:num_negatives]]
        for document, label in pairs:
            rows["query"].append(triple.query)
            rows["document"].append(document)
            rows["label"].append(label)
    return rows


def tuple_rows(triples: Sequence[Triple], num_negatives: int, anchor: str = "query") -> dict[str, list]:
    """Columns ``<anchor>``, ``positive``, ``negative_1`` ... ``negative_<num_negatives>`` (the n-tuple layout of
    sentence-transformers' ranking losses). Every triple must have ``num_negatives`` negatives."""
    rows: dict[str, list] = {anchor: [t.query for t in triples], "positive": [t.pos_text for t in triples]}
    for k in range(num_negatives):
        rows[f"negative_{k + 1}"] = [t.neg_texts[k] for t in triples]
    return rows


def margin_rows(
    triples: Sequence[Triple], num_negatives: int, path: str | Path, anchor: str = "anchor"
) -> dict[str, list]:
    """:func:`tuple_rows` plus ``label``: the teacher's margins ``pos_score - neg_scores[k]`` (a float with one
    negative, else a list of ``num_negatives`` floats), the target of ``MarginMSELoss``.

    Raises:
        DataError: a triple without teacher scores (mine with a ``teacher``), naming the file and the triple.
    """
    margins: list[list[float]] = []
    for index, triple in enumerate(triples, 1):
        if triple.pos_score is None or len(triple.neg_scores) < num_negatives:
            raise DataError(
                path,
                f"query {triple.query_id!r} has no teacher scores for its positive and "
                f"{num_negatives} negatives; MarginMSE needs triples mined with a teacher "
                '(triples.teacher = "bi-encoder", teacher_options = {model = ...})',
                index,
            )
        margins.append([triple.pos_score - s for s in triple.neg_scores[:num_negatives]])
    rows = tuple_rows(triples, num_negatives, anchor)
    rows["label"] = [m[0] for m in margins] if num_negatives == 1 else margins
    return rows


def to_dataset(rows: dict[str, list]):
    """A ``datasets.Dataset`` from columns (kept in memory; the trainer's seeded sampler shuffles it)."""
    from datasets import Dataset

    return Dataset.from_dict(rows)
