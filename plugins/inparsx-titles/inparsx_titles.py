"""inparsx-titles: a minimal inparsx plugin, one generator and one filter, using only the public contract.

Generator ``title``: a document's title as its synthetic query, the weak supervision of MacAvaney et al.,
"Content-Based Weak Supervision for Ad-Hoc Re-Ranking" (SIGIR 2019). Documents without a title get none.
Filter ``unique``: keeps the first record of each query text (case and spacing ignored) and drops the rest,
so a title shared by many documents does not become many contradictory training pairs.
"""

from collections.abc import Iterator, Sequence

from pydantic import Field

import inparsx
from inparsx.context import ComponentContext
from inparsx.filter.base import Decision, Filter
from inparsx.generate.base import Generator, GeneratorOptions
from inparsx.plugins import Options
from inparsx.records import Document, SyntheticQuery

__version__ = "0.1.0"


class TitleOptions(GeneratorOptions):
    min_words: int = Field(2, ge=1, description="titles with fewer words are skipped")


class TitleGenerator(Generator):
    """A document's title as its query (no language model)."""

    name = "title"
    Options = TitleOptions

    def generate(self, docs: Sequence[Document], ctx: ComponentContext) -> Iterator[list[SyntheticQuery]]:
        batch = [
            SyntheticQuery(query_id=f"{doc.doc_id}-0", doc_id=doc.doc_id, query=doc.title.strip(), generator="title")
            for doc in docs
            if len(doc.title.split()) >= self.options.min_words
        ]
        yield batch


class UniqueOptions(Options):
    case_sensitive: bool = False


class UniqueFilter(Filter):
    """Drops a query whose text an earlier record already has."""

    name = "unique"
    Options = UniqueOptions

    def apply(self, records: Sequence[SyntheticQuery], ctx: ComponentContext) -> list[Decision]:
        first: dict[str, str] = {}
        decisions = []
        for record in records:
            key = " ".join(record.query.split())
            key = key if self.options.case_sensitive else key.lower()
            if key in first:
                decisions.append(Decision(False, f"duplicate of {first[key]}"))
            else:
                first[key] = record.query_id
                decisions.append(Decision(True))
        return decisions


@inparsx.hookimpl
def register_generators(register):
    register(TitleGenerator)


@inparsx.hookimpl
def register_filters(register):
    register(UniqueFilter)
