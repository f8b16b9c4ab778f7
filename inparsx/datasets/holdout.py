"""Documents held out of training for the label-free estimate: drawn once, before any stage runs.

The pipeline builds a :class:`Holdout` when the recipe has ``[estimate]``; the training stages (tune,
generate's sample, triples, train) get :attr:`Holdout.training`, the collection without those documents, as
their dataset, so that no held-out document is ever a training positive, negative or few-shot example. The
generate stage also writes queries for :meth:`Holdout.documents`, and the estimate stage ranks them.

A dataset view, so it lives with the datasets: the runner builds it without importing the estimate stage's
package (it was ``inparsx.estimate.holdout``, which still re-exports it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property

from inparsx.datasets.base import Dataset
from inparsx.datasets.views import WithoutDocs
from inparsx.errors import InparsxError
from inparsx.records import Document


@dataclass
class Holdout:
    """``count`` documents of ``dataset`` drawn without replacement with ``seed`` (a stream of its own,
    ``"<seed>:holdout"``, so the generate stage's sample is drawn independently from the rest).

    Raises:
        InparsxError: (on first use) ``count`` is not smaller than the number of documents.
    """

    dataset: Dataset
    count: int
    seed: int

    @cached_property
    def doc_ids(self) -> list[str]:
        """The held-out document ids, in corpus order (one pass over the corpus)."""
        total = self.dataset.docs_count()
        if self.count >= total:
            raise InparsxError(
                f"[estimate] docs = {self.count}: {self.dataset.name} has {total} documents; hold out "
                "fewer, so that some are left to train on"
            )
        wanted = set(random.Random(f"{self.seed}:holdout").sample(range(total), self.count))
        return [doc.doc_id for pos, doc in enumerate(self.dataset.docs_iter()) if pos in wanted]

    @cached_property
    def training(self) -> WithoutDocs:
        """The collection without the held-out documents: what the training stages see."""
        return WithoutDocs(self.dataset, self.doc_ids)

    def documents(self) -> list[Document]:
        """The held-out documents, in corpus order."""
        found = self.dataset.get_docs(self.doc_ids)
        return [found[i] for i in self.doc_ids if i in found]
