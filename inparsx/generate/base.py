"""The generator contract: synthetic queries for documents."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from inparsx.plugins import Component, Options
from inparsx.records import Document, SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext


class GeneratorOptions(Options):
    """Options every generator has. ``num_docs``: documents sampled without replacement with the recipe seed
    (the whole corpus when smaller)."""

    num_docs: int = Field(100_000, ge=1)


class Generator(Component):
    """Yields synthetic queries batch by batch, so the stage can append them as they come (resumable).

    Optional parts of the contract (defaults suit a generator without an LLM or few-shot examples):
    ``queries_per_doc`` (the most records per document, used to detect a document cut short by a crash),
    ``generated_tokens`` (running count for the tokens/s readout), ``ran_with`` (the device and precision of
    its model), ``no_query_reason`` (when it writes no query for a document), ``fewshot_split(ctx)`` and
    ``select_documents(ctx)`` (the documents to write for, when the generator chooses them itself).
    """

    Options: ClassVar[type[GeneratorOptions]] = GeneratorOptions

    generated_tokens: int = 0
    """Tokens generated so far by this instance (0 for generators without a language model)."""

    ran_with: dict[str, str] | None = None
    """What the generator's model runs with, once loaded: ``{"model", "device", "precision",
    "precision_reason"}`` (resolved values, see :func:`inparsx.precision.ran_with`); ``None`` for a generator
    without a local model. The generate stage writes it to ``queries.stats.json``."""

    no_query_reason: str = ""
    """When this generator writes no query for a document, in words (e.g. the ``ict`` generator's "no sentence
    of min_words..max_words words"); the stage says it when fewer documents got queries than were sampled."""

    @property
    def queries_per_doc(self) -> int:
        """The most records one document yields (all of them in the same batch); a document may get fewer, or
        none. The generate stage refuses a batch with more (``PluginError``) and, resuming after a crash,
        redoes the file's last document when it has fewer, since a torn write may have cut it short."""
        return 1

    def fewshot_split(self, ctx: ComponentContext) -> str | None:
        """The split whose queries the prompts show as few-shot examples (``None``: no examples). When it is
        the evaluated split, the stage writes the ids used to ``excluded_qids.txt``."""
        return None

    def select_documents(self, ctx: ComponentContext) -> list[Document] | None:
        """The documents the stage hands to :meth:`generate`, in the order of the output file; ``None`` (the
        default): ``num_docs`` documents of the corpus drawn with the seed. A generator whose records come from
        somewhere else than a document sample (the ``qrels`` generator: the documents judged relevant to the
        sampled gold queries) returns them here.

        Raises:
            InparsxError: the generator cannot choose its documents (e.g. a split it may not read).
        """
        return None

    def generate(self, docs: Sequence[Document], ctx: ComponentContext) -> Iterator[list[SyntheticQuery]]:
        """Queries for ``docs``, one list per finished batch; every record's ``doc_id`` is one of ``docs``, and
        all records of a document come in the same list. ``ctx`` (:class:`~inparsx.context.ComponentContext`)
        gives the dataset (few-shot examples), the seed, ``resolve_model`` (``model = "@tune"``) and a work
        folder (``ctx.dir``) for the generator's own files."""
        raise NotImplementedError
