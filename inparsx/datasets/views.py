"""Views of a dataset that change its corpus: without some documents (the training side of a held-out split)
and with some documents' texts replaced (the label-free estimate's corpus).

A view is a :class:`~inparsx.datasets.base.Dataset` with its own fingerprint, so indexes and embeddings cached
for it never mix with those of the whole collection.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping

from inparsx.datasets.base import Dataset
from inparsx.records import Document, Qrels, Query


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]


class WithoutDocs(Dataset):
    """``base`` without the documents ``removed``: what the training stages see when documents are held out
    for the label-free estimate (``[estimate]``), so that no held-out document is ever a positive, a
    negative or a few-shot example.

    Qrels rows naming a removed document are dropped, and a split's queries are those still judged. The
    fingerprint is ``base``'s plus a digest of the removed ids.
    """

    def __init__(self, base: Dataset, removed: Iterable[str]):
        self.base, self.removed = base, frozenset(removed)
        self.name = base.name
        self._fingerprint = f"{base.fingerprint()}-without-{len(self.removed)}-{_digest(sorted(self.removed))}"

    def docs_iter(self) -> Iterator[Document]:
        return (doc for doc in self.base.docs_iter() if doc.doc_id not in self.removed)

    def docs(self) -> dict[str, Document]:
        if self._docs_table is None:
            self._docs_table = {i: d for i, d in self.base.docs().items() if i not in self.removed}
        return self._docs_table

    def get_docs(self, doc_ids: Iterable[str]) -> dict[str, Document]:
        return self.base.get_docs(i for i in doc_ids if i not in self.removed)

    def docs_count(self) -> int:
        return self.base.docs_count() - len(self.removed)

    def qrels(self, split: str) -> Qrels:
        kept = {
            qid: {d: r for d, r in judged.items() if d not in self.removed}
            for qid, judged in self.base.qrels(split).items()
        }
        return {qid: judged for qid, judged in kept.items() if judged}

    def queries(self, split: str) -> dict[str, Query]:
        judged = self.qrels(split)
        return {qid: q for qid, q in self.base.queries(split).items() if qid in judged}

    def splits(self) -> list[str]:
        return self.base.splits()

    def fingerprint(self) -> str:
        return self._fingerprint


class ReplacedTexts(Dataset):
    """``base`` with the documents of ``texts`` (``{docid: text}``) replaced by a document of that text and no
    title (e.g. a held-out document as its synthetic query's positive: the ``ict`` document without its query
    sentence). Queries and qrels pass through; the fingerprint is ``base``'s plus a digest of the replacements.
    """

    def __init__(self, base: Dataset, texts: Mapping[str, str]):
        self.base, self.texts = base, dict(texts)
        self.name = base.name
        self._fingerprint = f"{base.fingerprint()}-replaced-{len(self.texts)}-{_digest(self.texts)}"

    def _swap(self, doc: Document) -> Document:
        text = self.texts.get(doc.doc_id)
        return doc if text is None else Document(doc.doc_id, text, "")

    def docs_iter(self) -> Iterator[Document]:
        return (self._swap(doc) for doc in self.base.docs_iter())

    def docs(self) -> dict[str, Document]:
        if self._docs_table is None:
            self._docs_table = {i: self._swap(d) for i, d in self.base.docs().items()}
        return self._docs_table

    def get_docs(self, doc_ids: Iterable[str]) -> dict[str, Document]:
        return {i: self._swap(d) for i, d in self.base.get_docs(doc_ids).items()}

    def docs_count(self) -> int:
        return self.base.docs_count()

    def queries(self, split: str) -> dict[str, Query]:
        return self.base.queries(split)

    def qrels(self, split: str) -> Qrels:
        return self.base.qrels(split)

    def splits(self) -> list[str]:
        return self.base.splits()

    def fingerprint(self) -> str:
        return self._fingerprint
