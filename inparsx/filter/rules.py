"""Model-free filters: ``length``, ``copied`` and ``scores`` (the InPars v1 pipeline; Bonifacio et al., SIGIR
2022, and the InPars toolkit's ``filter.py``, Abonizio et al. 2023)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, model_validator

from inparsx.errors import InparsxError
from inparsx.filter.base import Decision, Filter
from inparsx.plugins import Options
from inparsx.records import SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.models import ModelRef

MISSING_SOURCE = "source document not in the corpus"


class LengthOptions(Options):
    """``length`` options: keep queries of ``min_tokens`` to ``max_tokens`` tokens, both inclusive (InPars
    toolkit defaults: 3 and 1000).

    ``count_by`` says what a token is: ``words`` (whitespace-separated words, the default), ``generated``
    (the generator's own tokens, i.e. ``len(log_probs)``: exactly the InPars toolkit's rule) or a Hugging
    Face tokenizer id/folder (its tokens, special tokens excluded).
    """

    min_tokens: int = Field(3, ge=0)
    max_tokens: int = Field(1000, ge=1)
    count_by: str = "words"

    @model_validator(mode="after")
    def _check_range(self) -> LengthOptions:
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) is above max_tokens ({self.max_tokens})")
        return self


class LengthFilter(Filter):
    """Drops queries shorter than ``min_tokens`` or longer than ``max_tokens`` (score: the token count)."""

    name: ClassVar[str] = "length"
    Options: ClassVar[type[LengthOptions]] = LengthOptions

    def models(self) -> list[ModelRef]:
        """The tokenizer ``count_by`` names (no weights), when it names one."""
        from inparsx.models import ModelRef

        if self.options.count_by in ("words", "generated"):
            return []
        return [ModelRef("count_by", self.options.count_by, "tokenizer", weights=False)]

    @cached_property
    def _tokenizer(self):
        from transformers import AutoTokenizer

        from inparsx.models import from_pretrained

        return from_pretrained(AutoTokenizer, self.options.count_by)

    def count(self, record: SyntheticQuery) -> int:
        """The record's length in the unit of ``count_by``.

        Raises:
            InparsxError: ``count_by = "generated"`` and the record has no ``log_probs``.
        """
        unit = self.options.count_by
        if unit == "words":
            return len(record.query.split())
        if unit == "generated":
            if not record.log_probs:
                raise InparsxError(
                    f"filter.length: count_by = 'generated' needs log_probs, and query "
                    f"{record.query_id!r} has none; use count_by = 'words'"
                )
            return len(record.log_probs)
        return len(self._tokenizer(record.query, add_special_tokens=False)["input_ids"])

    def apply(self, records: Sequence[SyntheticQuery], ctx: ComponentContext) -> list[Decision]:
        opts, unit = self.options, "tokens" if self.options.count_by != "words" else "words"
        decisions = []
        for record in records:
            n = self.count(record)
            reason = (
                f"fewer than {opts.min_tokens} {unit}"
                if n < opts.min_tokens
                else f"more than {opts.max_tokens} {unit}"
                if n > opts.max_tokens
                else None
            )
            decisions.append(Decision(reason is None, reason, float(n)))
        return decisions


class CopiedOptions(Options):
    """``copied`` options. ``max_copied``: drop a query when the longest run of its words that also occurs,
    contiguous, in its source document covers at least this fraction of its words (1.0, the default: the
    whole query occurs verbatim in the document, up to case, accents, punctuation and spacing)."""

    max_copied: float = Field(1.0, gt=0.0, le=1.0)


def words(text: str) -> list[str]:
    """Normalised words: Unicode NFKC, case-folded, accents removed, runs of letters/digits (``\\w+``)."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return re.findall(r"\w+", "".join(c for c in decomposed if not unicodedata.combining(c)))


def longest_shared_run(query: Sequence[str], document: Sequence[str]) -> int:
    """Length of the longest contiguous word sequence of ``query`` that also occurs contiguous in ``document``.

    Binary search on the length (a shared run of length n contains one of length n - 1), each step a set
    of the document's n-grams: O(|d| log |q|).
    """
    low, high = 0, len(query)
    while low < high:
        mid = (low + high + 1) // 2
        grams = {tuple(document[i : i + mid]) for i in range(len(document) - mid + 1)}
        if any(tuple(query[i : i + mid]) in grams for i in range(len(query) - mid + 1)):
            low = mid
        else:
            high = mid - 1
    return low


def copied_fraction(query: str, document: str) -> float:
    """The fraction of the query's words covered by its longest run shared with the document (0 for no words)."""
    q = words(query)
    return longest_shared_run(q, words(document)) / len(q) if q else 0.0


class CopiedFilter(Filter):
    """Drops queries copied from their source document.

    InPars' ``--skip_questions_copied_from_context`` drops a query that is a case-insensitive substring of
    the document; here query and document are compared as normalised words (see :class:`CopiedOptions`),
    so punctuation and spacing do not hide a copy. Score: the copied fraction.
    """

    name: ClassVar[str] = "copied"
    Options: ClassVar[type[CopiedOptions]] = CopiedOptions

    def apply(self, records: Sequence[SyntheticQuery], ctx: ComponentContext) -> list[Decision]:
        docs = ctx.dataset.get_docs({r.doc_id for r in records})
        decisions = []
        for record in records:
            if record.doc_id not in docs:
                decisions.append(Decision(False, MISSING_SOURCE))
                continue
            fraction = copied_fraction(record.query, docs[record.doc_id].full_text)
            copied = fraction >= self.options.max_copied
            reason = (
                "copied from its document"
                if self.options.max_copied == 1.0
                else f"at least {self.options.max_copied:g} of its words copied from its document"
            )
            decisions.append(Decision(not copied, reason if copied else None, round(fraction, 4)))
        return decisions


class ScoresOptions(Options):
    """``scores`` options. ``keep_top_k``: queries kept (InPars v1: 10,000), highest mean log-probability first."""

    keep_top_k: int = Field(10_000, ge=1)


def mean_log_prob(record: SyntheticQuery) -> float:
    """``record.score``, else the mean of ``record.log_probs`` (eq. 1 of the InPars toolkit paper).

    Raises:
        InparsxError: the record has neither.
    """
    if record.score is not None:
        return float(record.score)
    if record.log_probs:
        return sum(record.log_probs) / len(record.log_probs)
    raise InparsxError(
        f"filter.scores: query {record.query_id!r} has no score and no log_probs; the scores "
        "filter needs a generator that records token log-probabilities"
    )


def top_k_decisions(scores: Sequence[float], ids: Sequence[str], k: int, what: str) -> list[Decision]:
    """Keep the ``k`` highest ``scores`` (ties broken by id); the others dropped as ``not in the top k by <what>``."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], ids[i]))
    kept = set(order[:k])
    reason = f"not in the top {k:,} by {what}"
    return [Decision(i in kept, None if i in kept else reason, scores[i]) for i in range(len(scores))]


class ScoresFilter(Filter):
    """Keeps the ``keep_top_k`` queries with the highest mean token log-probability (InPars v1)."""

    name: ClassVar[str] = "scores"
    Options: ClassVar[type[ScoresOptions]] = ScoresOptions

    def apply(self, records: Sequence[SyntheticQuery], ctx: ComponentContext) -> list[Decision]:
        scores = [mean_log_prob(r) for r in records]
        return top_k_decisions(scores, [r.query_id for r in records], self.options.keep_top_k, "mean log-probability")
