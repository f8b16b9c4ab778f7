"""ir_datasets collections (MacAvaney et al., SIGIR 2021). ``ir_datasets`` is imported on first use only."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import inparsx
from inparsx.datasets.base import Dataset, DatasetLoader
from inparsx.errors import InparsxError
from inparsx.records import Document, Qrels, Query

SPLITS = ("train", "dev", "validation", "test")


class IrdsDataset(Dataset):
    """An ir_datasets id. A split is the sub-dataset ``<id>/<split>`` (BEIR's layout), or the id itself when it
    has its own qrels (e.g. ``msmarco-passage/dev/small``).

    Raises:
        InparsxError: an id unknown to ir_datasets, or a split with neither form.
    """

    def __init__(self, dataset_id: str):
        import ir_datasets

        from inparsx.progress import quiet_ir_datasets

        quiet_ir_datasets()
        self.id = dataset_id
        self.name = f"irds:{dataset_id}"
        try:
            self._base = ir_datasets.load(dataset_id)
        except KeyError:
            raise InparsxError(f"ir_datasets has no dataset {dataset_id!r} (see https://ir-datasets.com)") from None
        self._cache: dict[str, object] = {}

    def _subset(self, split: str):
        import ir_datasets

        if split not in self._cache:
            candidate = f"{self.id}/{split}"
            if candidate in ir_datasets.registry:
                self._cache[split] = ir_datasets.load(candidate)
            elif self._base.has_qrels() and split in (self.id.rsplit("/", 1)[-1], "default"):
                self._cache[split] = self._base
            else:
                raise InparsxError(f"{self.name}: no split {split!r}; available: {', '.join(self.splits()) or '(none)'}")
        return self._cache[split]

    def docs_iter(self) -> Iterator[Document]:
        for doc in self._base.docs_iter():
            yield Document(doc.doc_id, getattr(doc, "text", "") or "", (getattr(doc, "title", "") or "").strip())

    def get_docs(self, doc_ids: Iterable[str]) -> dict[str, Document]:
        if getattr(self, "_docs_table", None) is not None:
            return super().get_docs(doc_ids)
        store = self._base.docs_store()
        return {i: Document(d.doc_id, getattr(d, "text", "") or "", (getattr(d, "title", "") or "").strip())
                for i, d in store.get_many(list(doc_ids)).items()}

    def docs_count(self) -> int:
        return self._base.docs_count() or super().docs_count()

    def queries(self, split: str) -> dict[str, Query]:
        subset = self._subset(split)
        return {q.query_id: Query(q.query_id, q.text) for q in subset.queries_iter()}

    def qrels(self, split: str) -> Qrels:
        qrels: Qrels = {}
        for qrel in self._subset(split).qrels_iter():
            qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = int(qrel.relevance)
        return qrels

    def splits(self) -> list[str]:
        import ir_datasets

        found = [s for s in SPLITS if f"{self.id}/{s}" in ir_datasets.registry]
        return found or ([self.id.rsplit("/", 1)[-1]] if self._base.has_qrels() else [])

    def fingerprint(self) -> str:
        return f"irds-{self.id.replace('/', '-')}-{self.docs_count()}"


class IrdsLoader(DatasetLoader):
    """``irds:<id>``: any dataset of ir_datasets."""

    name = "irds"

    def load(self, spec: str) -> Dataset:
        return IrdsDataset(spec)


@inparsx.hookimpl
def register_datasets(register):
    register(IrdsLoader)
