"""Metric names: the field's spelling (``ndcg@10``, ``mrr@10``, ``recall@100``, ``map``) checked before any work.

The canonical spelling is ranx's (Bassani, ECIR 2022), lower case: ``<metric>[@k][-l<level>]``. Common variants
are accepted and canonicalised: upper/mixed case (``nDCG@10``, ``MRR@10``, ``R@100``, ``P@10``, ``MAP``) and
trec_eval/pytrec_eval names (``ndcg_cut_10``, ``ndcg_cut.10``, ``recip_rank``, ``P_10``, ``recall.100``,
``map_cut_100``, ``success_10``, ``Rprec``). No ``@k`` means the whole ranking (e.g. ``map``, as trec_eval).
``-l2`` raises the relevance level for that metric (a qrel counts as relevant when its grade is >= 2).
This module imports nothing heavy: recipes are validated with it before ranx loads.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from inparsx.errors import InparsxError

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "mrr@10", "recall@100", "recall@1000", "map")
"""nDCG@10, MRR@10, R@100, R@1000, MAP: what InPars, Promptagator and BEIR papers report."""

BASES: dict[str, tuple[str, str, bool]] = {
    # ranx name: (table label, description, accepts @k)
    "ndcg": ("nDCG", "normalised DCG, linear gain (Järvelin & Kekäläinen 2002; trec_eval ndcg_cut)", True),
    "ndcg_burges": ("nDCG-B", "normalised DCG, exponential gain 2^rel-1 (Burges et al. 2005)", True),
    "dcg": ("DCG", "discounted cumulative gain, linear gain", True),
    "dcg_burges": ("DCG-B", "discounted cumulative gain, exponential gain", True),
    "mrr": ("MRR", "reciprocal rank of the first relevant document (0 if none in the top k)", True),
    "map": ("MAP", "average precision, divided by the number of relevant documents (trec_eval map)", True),
    "recall": ("R", "relevant documents retrieved in the top k / relevant documents", True),
    "precision": ("P", "relevant documents in the top k / k", True),
    "hits": ("Hits", "number of relevant documents in the top k", True),
    "hit_rate": ("Success", "1 if a relevant document is in the top k (trec_eval success)", True),
    "f1": ("F1", "harmonic mean of precision and recall at k", True),
    "r-precision": ("R-Prec", "precision at R, R = number of relevant documents", False),
    "rbp": ("RBP", "rank-biased precision with persistence p, written rbp.95 (Moffat & Zobel 2008)", False),
}
"""The metrics of ranx 0.3.21 offered here, by ranx name (all of ranx's but bpref, see ``UNSUPPORTED``)."""

UNSUPPORTED: dict[str, str] = {
    "bpref": "bpref is not offered: ranx 0.3.21 divides by the number of judged non-relevant documents, so it is "
    "NaN on qrels without any (all of BEIR's), where trec_eval gives a number",
}

ALIASES: dict[str, str] = {
    "ndcg_cut": "ndcg",
    "rr": "mrr",
    "recip_rank": "mrr",
    "mrr_cut": "mrr",
    "ap": "map",
    "map_cut": "map",
    "r": "recall",
    "recall_cut": "recall",
    "p": "precision",
    "p_cut": "precision",
    "success": "hit_rate",
    "hitrate": "hit_rate",
    "rprec": "r-precision",
    "r_precision": "r-precision",
    "rprecision": "r-precision",
}
"""Other spellings (lower case, trec_eval's included) -> ranx name."""

_FORM = re.compile(r"^(?P<base>[a-z][a-z0-9_\-]*?)(?:(?:@|_|\.)(?P<k>\d+))?(?:-l(?P<level>\d+))?$")
_RBP = re.compile(r"^rbp(?:\.|@0?\.)(?P<p>\d+)(?:-l(?P<level>\d+))?$")

VALID_FORMS = (
    "ndcg@K, mrr@K, recall@K, precision@K, map, map@K, hits@K, hit_rate@K, f1@K, dcg@K, ndcg_burges@K, "
    "r-precision, rbp.95 (no @K = the whole ranking; trec_eval names such as ndcg_cut_10, "
    "recip_rank, P_10, recall.100 also work; add -l2 to count only grades >= 2 as relevant)"
)


class MetricNameError(InparsxError, ValueError):
    """A metric name that ranx cannot compute; the message lists the valid forms and the nearest match.

    A ``ValueError`` too, so pydantic reports it against the recipe key ``evaluate.metrics``.
    """


@dataclass(frozen=True)
class Metric:
    """A parsed metric name.

    ``name`` is the canonical spelling (also ranx's: ``ndcg@10``, ``map``, ``recall@100-l2``); ``base`` the
    ranx metric; ``k`` the cutoff (0 = whole ranking); ``level`` the lowest grade counted as relevant.
    """

    name: str
    base: str
    k: int = 0
    level: int = 1

    @property
    def label(self) -> str:
        """The column header of a results table: ``nDCG@10``, ``R@1000``, ``MAP``, ``MRR@10 (rel>=2)``."""
        text = BASES[self.base][0]
        if self.base == "rbp":
            text = f"RBP.{self.name.split('.', 1)[1].split('-l')[0]}"
        elif self.k:
            text += f"@{self.k}"
        return text + (f" (rel>={self.level})" if self.level != 1 else "")


def parse_metric(text: str) -> Metric:
    """Parse one metric name into its canonical form.

    Raises:
        MetricNameError: an unknown metric, a cutoff on a metric that takes none, or a zero cutoff.
    """
    raw = str(text).strip()
    lowered = raw.lower()
    rbp = _RBP.match(lowered)
    if rbp:
        level = int(rbp["level"] or 1)
        return Metric(f"rbp.{rbp['p']}" + (f"-l{level}" if level != 1 else ""), "rbp", 0, level)
    match = _FORM.match(lowered)
    if match and match["base"] == "rbp":
        raise MetricNameError(f"metric {raw!r}: rbp needs its persistence, e.g. rbp.95 (p = 0.95)")
    base = ALIASES.get(match["base"], match["base"]) if match else lowered
    if base in UNSUPPORTED:
        raise MetricNameError(f"metric {raw!r}: {UNSUPPORTED[base]}")
    if not match or base not in BASES:
        cutoff, grade = (match["k"], match["level"]) if match else (None, None)
        raise MetricNameError(_unknown_message(raw, base, cutoff, grade))
    k, level = int(match["k"] or 0), int(match["level"] or 1)
    if match["k"] is not None and not BASES[base][2]:
        raise MetricNameError(f"metric {raw!r}: {base} takes no cutoff; write {base!r}")
    if match["k"] is not None and k == 0:
        raise MetricNameError(f"metric {raw!r}: the cutoff must be a positive integer (omit @k for the whole ranking)")
    if level < 1:
        raise MetricNameError(f"metric {raw!r}: the relevance level (-lN) must be at least 1")
    name = base + (f"@{k}" if k else "") + (f"-l{level}" if level != 1 else "")
    return Metric(name, base, k, level)


def parse_metrics(names: list[str] | tuple[str, ...] | str) -> list[Metric]:
    """Parse several names (a list, or one comma-separated string), dropping repeats, keeping order.

    Raises:
        MetricNameError: on the first invalid name, or an empty list.
    """
    if isinstance(names, str):
        names = [names]
    items = [part.strip() for name in names for part in str(name).split(",") if part.strip()]
    if not items:
        raise MetricNameError(f"no metric given; valid forms: {VALID_FORMS}")
    parsed = {metric.name: metric for metric in map(parse_metric, items)}
    return list(parsed.values())


def canonical_metrics(names: list[str] | tuple[str, ...] | str) -> list[str]:
    """Canonical spellings of ``names`` (see :func:`parse_metrics`); the validator of ``metrics`` options."""
    return [metric.name for metric in parse_metrics(names)]


def canonical_metrics_option(value: object) -> object:
    """The before-validator of a ``metrics`` option (``[evaluate]``, ``[estimate]``): a name, or a list or tuple of
    names, in their canonical spellings (:func:`canonical_metrics`); any other value (a number, a table) unchanged,
    for the field's own ``list[str]`` check to refuse in one line against the key (a ``TypeError`` raised here
    would escape pydantic as a traceback).

    Raises:
        MetricNameError: an unknown or malformed name (a ``ValueError``, reported against the key).
    """
    if isinstance(value, str):
        return canonical_metrics(value)
    if isinstance(value, list | tuple):
        return canonical_metrics(list(value))
    return value


def _unknown_message(raw: str, base: str, k: str | None, level: str | None) -> str:
    message = f"unknown metric {raw!r}; valid forms: {VALID_FORMS}"
    close = difflib.get_close_matches(base, sorted(set(BASES) | set(ALIASES)), n=1, cutoff=0.6)
    if close:
        suggestion = ALIASES.get(close[0], close[0])
        suggestion += (f"@{k}" if k and BASES[suggestion][2] else "") + (f"-l{level}" if level else "")
        message += f"; did you mean {suggestion!r}?"
    return message
