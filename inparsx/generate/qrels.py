"""The ``qrels`` generator: gold queries instead of synthetic ones, the baseline that says what synthetic data
is worth.

PATH (Jin et al., 2024, arXiv 2406.11706) compares a reranker trained on synthetic queries with the same
reranker trained on 10 gold labels and on all of them. This generator writes those gold training pairs as the
records every generator writes: one :class:`~inparsx.records.SyntheticQuery` per (query, relevant document) of
a split other than the evaluated one, so that the filter, triples, train and rerank stages run unchanged and
the run's ``recipe.toml`` and report describe what was trained on.

It reads the dataset through :class:`~inparsx.datasets.base.WithoutSplit`, the view a tuner gets: the
evaluated split's queries and qrels cannot be read, so training on test labels is impossible by construction
(a recipe asking for it is refused when it loads, and the view raises if it is reached anyway).
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from inparsx.datasets.base import WithoutSplit
from inparsx.errors import InparsxError
from inparsx.generate.base import Generator, GeneratorOptions
from inparsx.plugins import eval_split_from
from inparsx.records import Document, SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext


class QrelsOptions(GeneratorOptions):
    """Options of the ``qrels`` generator.

    ``split``: the split whose judged queries are written (never the evaluated split). ``num_queries``: how many
    of its queries, drawn with the recipe seed (PATH uses 10); ``None``: all of them. The draw shuffles the
    split's query ids with the seed and keeps the first ``num_queries``, so with one seed the 10 queries are
    among the 50, which are among the 200 (a labels curve whose points differ only by the added queries).
    ``min_relevance``: the lowest grade that makes a document a positive (1: every document judged relevant;
    2 on a graded collection such as TREC-COVID keeps the highly relevant ones). Documents judged relevant
    below it are no positives, and the triples stage never draws them as negatives either.
    ``num_docs`` is refused: the documents are those judged relevant to the drawn queries.
    """

    split: str = Field("train", validate_default=True)
    num_queries: int | None = Field(None, ge=1)
    min_relevance: int = Field(1, ge=1)
    num_docs: int | None = Field(None, description="refused: the documents are those judged relevant to the queries")

    @field_validator("split")
    @classmethod
    def _not_the_evaluated_split(cls, split: str, info: ValidationInfo) -> str:
        """Refuse the recipe's evaluated split when the recipe loads (the view refuses it at run time too)."""
        if split == eval_split_from(info):
            raise ValueError(
                f"{split!r} is the evaluated split ([dataset] eval_split): training on its gold "
                "labels would leak them into the evaluation; take another split (e.g. train)"
            )
        return split

    @field_validator("num_docs")
    @classmethod
    def _no_num_docs(cls, value: int | None) -> None:
        if value is not None:
            raise ValueError(
                "the qrels generator writes the documents judged relevant to its queries; "
                "choose how many queries with num_queries"
            )
        return None


class QrelsGenerator(Generator):
    """Gold queries of a split other than the evaluated one, one record per (query, relevant document)."""

    name: ClassVar[str] = "qrels"
    Options: ClassVar[type[QrelsOptions]] = QrelsOptions
    options: QrelsOptions
    batch_size: int = 512
    """Documents per yielded batch (the stage appends one batch at a time)."""
    _most_per_doc: int | None = None

    @property
    def queries_per_doc(self) -> int:
        """The most drawn queries that judge one document relevant (known once the queries are drawn:
        :meth:`select_documents` or :meth:`generate`); before, ``num_queries`` (or, for every query, a bound
        no document reaches)."""
        if self._most_per_doc is not None:
            return self._most_per_doc
        return self.options.num_queries or sys.maxsize

    def select_documents(self, ctx: ComponentContext) -> list[Document]:
        """The documents judged relevant (grade >= ``min_relevance``) to the drawn queries, in the order the
        queries were drawn (each document once, at its first query).

        Raises:
            SplitHiddenError: ``split`` is the evaluated split.
            InparsxError: the split has no judged query with a relevant document in the corpus.
        """
        pairs, usable, outside = self._draw(ctx)
        drawn = len(dict.fromkeys(qid for qid, _, _ in pairs))
        ctx.log(
            f"qrels: {drawn} of {usable} {self.options.split} queries with a relevant document, "
            f"{len(pairs)} (query, relevant document) pairs"
            + (f"; {outside} judged documents are not in the corpus and were left out" if outside else "")
        )
        docs = ctx.dataset.docs()
        return [docs[doc_id] for doc_id in dict.fromkeys(doc_id for _, doc_id, _ in pairs)]

    def generate(self, docs: Sequence[Document], ctx: ComponentContext) -> Iterator[list[SyntheticQuery]]:
        """One record per (drawn query, relevant document) for the documents of ``docs``, ``batch_size``
        documents per batch (a document's records, one per drawn query that judges it relevant, in one batch).
        A record's ``query_id`` is ``<qid>-<docid>``; ``extra`` holds the gold ``qid``, the ``split``, the
        document's ``relevance`` grade and ``judged_relevant``, every document judged relevant to the query
        (grade > 0, in the corpus), which the triples stage never draws as a negative."""
        pairs, _, _ = self._draw(ctx)
        by_doc: dict[str, list[tuple[str, int]]] = {}
        for qid, doc_id, grade in pairs:
            by_doc.setdefault(doc_id, []).append((qid, grade))
        view = WithoutSplit(ctx.dataset, ctx.eval_split)
        queries, qrels = view.queries(self.options.split), view.qrels(self.options.split)
        corpus = ctx.dataset.docs()
        for start in range(0, len(docs), self.batch_size):
            batch = []
            for doc in docs[start : start + self.batch_size]:
                for qid, grade in by_doc.get(doc.doc_id, []):
                    judged = sorted(d for d, g in qrels[qid].items() if g > 0 and d in corpus)
                    batch.append(
                        SyntheticQuery(
                            query_id=f"{qid}-{doc.doc_id}",
                            doc_id=doc.doc_id,
                            query=queries[qid].text,
                            generator=self.name,
                            extra={
                                "qid": qid,
                                "split": self.options.split,
                                "relevance": grade,
                                "judged_relevant": judged,
                            },
                        )
                    )
            yield batch

    def _draw(self, ctx: ComponentContext) -> tuple[list[tuple[str, str, int]], int, int]:
        """``(qid, docid, grade)`` of the drawn queries' positives (queries in draw order, documents by id), the
        number of queries there were to draw from, and the judged documents missing from the corpus."""
        opts = self.options
        view = WithoutSplit(ctx.dataset, ctx.eval_split)
        queries, qrels = view.queries(opts.split), view.qrels(opts.split)
        corpus = ctx.dataset.docs()
        positives = {
            qid: sorted((d, g) for d, g in judged.items() if g >= opts.min_relevance and d in corpus)
            for qid, judged in qrels.items()
            if qid in queries
        }
        usable = sorted(qid for qid, found in positives.items() if found)
        if not usable:
            raise InparsxError(
                f"qrels generator: split {opts.split!r} of {ctx.dataset.name or 'the dataset'} has "
                f"no query with a document judged relevant (grade >= {opts.min_relevance}) in the "
                "corpus"
            )
        outside = sum(1 for judged in qrels.values() for d, g in judged.items() if g > 0 and d not in corpus)
        random.Random(f"{ctx.seed}:qrels").shuffle(usable)
        pairs = [(qid, doc_id, grade) for qid in usable[: opts.num_queries] for doc_id, grade in positives[qid]]
        self._most_per_doc = max(Counter(doc_id for _, doc_id, _ in pairs).values())
        return pairs, len(usable), outside
