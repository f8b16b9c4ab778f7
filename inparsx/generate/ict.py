"""The ``ict`` generator: the Inverse Cloze Task (Lee, Chang and Toutanova, ACL 2019), no language model.

A sentence of each document, drawn with the seed, becomes its query; by default it is removed from the
document used as the positive (Lee et al. remove it 90% of the time; here ``remove_sentence`` decides). That
text is the record's ``positive_text``, which the triples stage uses as the positive. The sentence splitter is
built for scientific abstracts: abbreviations (``et al.``, ``e.g.``, ``Fig. 2``), decimals and p-values do not
end a sentence.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, model_validator

from inparsx.generate.base import Generator, GeneratorOptions
from inparsx.records import Document, SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext

ABBREVIATIONS = frozenset(
    """al approx ca cf dr eq eqs fig figs incl mr mrs ms prof ref refs resp sp spp
                          ssp subsp var viz vol vs""".split()
)
"""Words that end with a period inside sentences (lower case, without the period)."""

BEFORE_NUMBER = frozenset("no nos p pp fig figs eq eqs ref refs vol table tab ch sec".split())
"""Abbreviations that precede a number (``No. 5``, ``p. 12``)."""

HEADING_WORDS = frozenset(
    """ABSTRACT AIM AIMS ANALYSIS APPROACH BACKGROUND CASE CLINICAL CONCLUSION CONCLUSIONS CONTEXT
    CRITERIA DATA DESIGN DISCUSSION ELIGIBILITY EVIDENCE EXPERIMENTAL EXPOSURE EXPOSURES EXTRACTION FINDINGS FUNDING
    GOAL GOALS HYPOTHESIS IMPLICATIONS IMPORTANCE INTERPRETATION INTERVENTION INTERVENTIONS INTRODUCTION KEY
    LIMITATIONS MAIN MATERIALS MEASURE MEASUREMENTS MEASURES METHOD METHODOLOGY METHODS OBJECTIVE OBJECTIVES
    OBSERVATIONS OUTCOME OUTCOMES PARTICIPANTS PATIENTS POPULATION PRACTICE PRINCIPAL PROCEDURES PURPOSE QUESTION
    RATIONALE REGISTRATION RELEVANCE REPORT RESULT RESULTS REVIEW SAMPLE SEARCH SELECTION SETTING SETTINGS
    SIGNIFICANCE SOURCES STRATEGY STUDY SUBJECTS SUMMARY SYNTHESIS TRIAL UNLABELLED""".split()
)
"""Words of the upper-case section headings of structured abstracts (``BACKGROUND``, ``METHODS AND RESULTS``,
``MAIN OUTCOME MEASURES``...), which are not part of any sentence."""

_HEAD = "(?:" + "|".join(sorted(HEADING_WORDS)) + ")"
_HEADING = re.compile(rf"{_HEAD}(?:\s*(?:\s(?:AND|OF|IN)\s|&|/|\s)\s*{_HEAD})*\s*:?\s+(?=\S)")
_CANDIDATE = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*\s+|\n\s*\n")
_DOTTED = re.compile(r"(?:[A-Za-z]{1,3}\.)+[A-Za-z]{1,3}")
_OPENERS = "([\"'\u201c\u2018"


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text`` (character offsets, surrounding whitespace excluded).

    A boundary is ``.``, ``!`` or ``?`` (optionally followed by closing quotes or brackets), then whitespace,
    then an upper-case letter, a digit or an opening bracket or quote; or a blank line. A period after a known
    abbreviation, after a dotted one (``e.g.``, ``U.S.``) or after ``No.``/``Fig.`` before a number is not a
    boundary. Decimals (``3.5``) never are, as no space follows their period. The section heading that opens
    a sentence of a structured abstract (``RESULTS``, ``METHODS AND FINDINGS``) is left out of its span.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        if match.end() >= len(text) or not _is_boundary(text, match):
            continue
        _add_span(spans, text, start, match.end())
        start = match.end()
    _add_span(spans, text, start, len(text))
    return spans


def _is_boundary(text: str, match: re.Match) -> bool:
    if match.group().strip() == "":
        return True  # blank line
    following = text[match.end()]
    if not (following.isupper() or following.isdigit() or following in _OPENERS):
        return False
    if not match.group().startswith(".") or match.group().startswith(".."):
        return True
    word = text[: match.start()].rsplit(None, 1)[-1].lstrip("([\"'").lower() if text[: match.start()].strip() else ""
    if word in ABBREVIATIONS or _DOTTED.fullmatch(word):
        return False
    return not (word in BEFORE_NUMBER and following.isdigit())


def _add_span(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    if piece.strip():
        left = start + len(piece) - len(piece.lstrip())
        if heading := _HEADING.match(text, left, start + len(piece.rstrip())):
            left = heading.end()
        spans.append((left, start + len(piece.rstrip())))


class ICTOptions(GeneratorOptions):
    """Options of the ``ict`` generator."""

    min_words: int = Field(5, ge=1, description="shortest sentence used as a query, in words")
    max_words: int = Field(64, ge=1, description="longest sentence used as a query, in words")
    remove_sentence: bool = Field(True, description="remove the query sentence from the positive (Lee et al.)")
    first_sentences: int | None = Field(
        None,
        ge=1,
        description=(
            "draw the query among the document's first N sentences only, as Body First Selection draws it from the "
            "first section (Chang et al., ICLR 2020); None: any sentence"
        ),
    )

    @model_validator(mode="after")
    def _ordered(self) -> ICTOptions:
        if self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) is larger than max_words ({self.max_words})")
        return self


class ICTGenerator(Generator):
    """Inverse Cloze Task: a sentence of the document is its query (no language model; CPU-fast)."""

    name = "ict"
    Options: ClassVar[type[ICTOptions]] = ICTOptions
    batch_size: ClassVar[int] = 512

    @property
    def no_query_reason(self) -> str:  # type: ignore[override]
        opts = self.options
        single = (
            " or with a single sentence (remove_sentence needs another one for the positive)"
            if opts.remove_sentence
            else ""
        )
        first = f" among its first {opts.first_sentences}" if opts.first_sentences else ""
        return f"a document without a sentence of {opts.min_words} to {opts.max_words} words{first}{single}"

    def generate(self, docs: Sequence[Document], ctx: ComponentContext) -> Iterator[list[SyntheticQuery]]:
        """One query per document that has a sentence of ``min_words``..``max_words`` words (and, when
        removing it, at least one other sentence); other documents yield nothing."""
        for start in range(0, len(docs), self.batch_size):
            batch = (self.query_for(doc, ctx.seed) for doc in docs[start : start + self.batch_size])
            yield [record for record in batch if record is not None]

    def query_for(self, doc: Document, seed: int) -> SyntheticQuery | None:
        """The ICT record of ``doc``, its sentence drawn with ``(seed, doc_id)`` among the eligible ones (length
        within ``min_words``..``max_words``, among the first ``first_sentences`` when set); ``None`` when none
        qualifies."""
        opts = self.options
        spans = split_sentences(doc.text)
        if opts.remove_sentence and len(spans) < 2:
            return None
        eligible = [
            s
            for s in spans[: opts.first_sentences]
            if opts.min_words <= len(doc.text[s[0] : s[1]].split()) <= opts.max_words
        ]
        if not eligible:
            return None
        start, end = random.Random(f"{seed}:ict:{doc.doc_id}").choice(eligible)
        positive = None
        if opts.remove_sentence:
            rest = f"{doc.text[:start].rstrip()} {doc.text[end:].lstrip()}".strip()
            positive = Document(doc.doc_id, rest, doc.title).full_text
        return SyntheticQuery(
            query_id=f"{doc.doc_id}-0",
            doc_id=doc.doc_id,
            query=doc.text[start:end],
            generator="ict",
            positive_text=positive,
            extra={"sentence_span": [start, end]},
        )
