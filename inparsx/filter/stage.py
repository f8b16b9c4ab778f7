"""The filter stage: run the recipe's filters in order over ``generate/queries.jsonl``.

Each filter sees only the records the previous ones kept. Writes ``filter/queries.jsonl`` (the kept records,
each with every filter's score in ``extra["filter_scores"]``), ``filter/decisions.jsonl`` (one line per input
record: ``query_id``, ``doc_id``, ``kept``, the ``filter`` that dropped it, its ``reason`` and the scores
seen so far) and ``filter/summary.json`` (per filter: records in, kept, dropped per reason, and a ``warning``
when it dropped every record or more than 90% of them), and prints the summary as a table. With ``[estimate]``,
the held-out documents' queries are filtered in the same pass and the kept ones written to
``filter/heldout.jsonl`` instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from inparsx.artifacts import FILTER_DECISIONS, HELDOUT_QUERIES, KEPT_HELDOUT, KEPT_QUERIES, SUMMARY, SYNTHETIC_QUERIES
from inparsx.errors import DataError, PluginError
from inparsx.filter.base import Filter
from inparsx.io import write_json, write_jsonl
from inparsx.progress import console, out
from inparsx.records import SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.pipeline import StageContext

SCORES_KEY = "filter_scores"
"""The key of ``SyntheticQuery.extra`` holding ``{filter name: score}`` in ``filter/queries.jsonl``."""


@dataclass
class FilterReport:
    """What a chain of filters did: the kept records, one decision row per input record, a summary."""

    kept: list[SyntheticQuery]
    decisions: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)


def apply_filters(records: Sequence[SyntheticQuery], filters: Sequence[Filter], ctx: ComponentContext) -> FilterReport:
    """Run ``filters`` in order, each on the records the previous ones kept, in the context ``ctx``.

    Raises:
        PluginError: a filter that returns a number of decisions different from the number of records.
    """
    rows: dict[str, dict[str, Any]] = {
        r.query_id: {
            "query_id": r.query_id,
            "doc_id": r.doc_id,
            "kept": True,
            "filter": None,
            "reason": None,
            "scores": {},
        }
        for r in records
    }
    alive, steps = list(records), []
    for component in filters:
        decisions = component.apply(alive, ctx)
        if len(decisions) != len(alive):
            raise PluginError(f"filter {component.name!r} returned {len(decisions)} decisions for {len(alive)} records")
        survivors: list[SyntheticQuery] = []
        reasons: Counter[str] = Counter()
        for record, decision in zip(alive, decisions):
            row = rows[record.query_id]
            if decision.score is not None:
                row["scores"][component.name] = decision.score
            if decision.keep:
                survivors.append(record)
            else:
                row.update(kept=False, filter=component.name, reason=decision.reason or "dropped")
                reasons[row["reason"]] += 1
        steps.append({"filter": component.name, "in": len(alive), "kept": len(survivors), "dropped": dict(reasons)})
        warning = drop_warning(component.name, alive, len(survivors), reasons)
        if warning:
            steps[-1]["warning"] = warning
            console.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
        alive = survivors
    for record in alive:
        record.extra[SCORES_KEY] = rows[record.query_id]["scores"]
    summary = {"input": len(records), "kept": len(alive), "filters": steps}
    return FilterReport(alive, list(rows.values()), summary)


DROP_WARNING = 0.9
"""A filter that drops more than this share of the records it sees gets a warning naming it."""


def drop_warning(name: str, seen: Sequence[SyntheticQuery], kept: int, reasons: Counter) -> str:
    """The warning for filter ``name`` when it dropped every record it saw, or more than :data:`DROP_WARNING` of
    them (``""`` otherwise): counts, the main reasons, and a hint where the cause is known (the ``copied``
    filter on ``ict`` queries, which are sentences of their own documents)."""
    dropped = len(seen) - kept
    if not seen or dropped <= DROP_WARNING * len(seen):
        return ""
    why = ", ".join(f"{reason} ({count})" for reason, count in reasons.most_common(3))
    head = (
        f"filter {name!r} dropped all {len(seen)} synthetic queries it saw"
        if not kept
        else f"filter {name!r} dropped {dropped} of the {len(seen)} synthetic queries it saw "
        f"({dropped / len(seen):.0%})"
    )
    hint = ""
    if name == "copied" and all((r.generator or "").startswith("ict") for r in seen):
        hint = (
            "; ICT queries are sentences of their own documents, so 'copied' drops them by design: leave it "
            "out with the ict generator"
        )
    return f"{head}: {why}{hint}" + ("; nothing is left to train on" if not kept else "")


def print_summary(summary: dict[str, Any]) -> None:
    """The summary as a rich table on stdout: one row per (filter, reason)."""
    from rich.table import Table

    table = Table(title=f"filter: kept {summary['kept']:,} of {summary['input']:,} synthetic queries")
    for column, justify in (
        ("filter", "left"),
        ("in", "right"),
        ("kept", "right"),
        ("dropped", "right"),
        ("reason", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for step in summary["filters"]:
        reasons = sorted(step["dropped"].items(), key=lambda item: -item[1]) or [("", 0)]
        for i, (reason, count) in enumerate(reasons):
            head = (step["filter"], f"{step['in']:,}", f"{step['kept']:,}") if i == 0 else ("", "", "")
            table.add_row(*head, f"{count:,}" if reason else "0", reason)
    out.print(table)


def write_report(report: FilterReport, folder: Path) -> None:
    """``queries.jsonl``, ``decisions.jsonl`` and ``summary.json`` in ``folder``."""
    write_jsonl(folder / KEPT_QUERIES.file, (r.to_dict() for r in report.kept))
    write_jsonl(folder / FILTER_DECISIONS.file, report.decisions)
    write_json(folder / SUMMARY.file, report.summary)


def run_stage(ctx: StageContext) -> None:
    """Filter ``generate/queries.jsonl`` with the recipe's filters (see the module docstring).

    Raises:
        InparsxError: ``generate/queries.jsonl`` is missing.
        DataError: a malformed record or a repeated ``query_id`` (file and line named).
    """
    path = ctx.path_of(SYNTHETIC_QUERIES)
    records = SYNTHETIC_QUERIES.read(path)
    console.print(f"filter: {len(records):,} synthetic queries from {path}")
    if ctx.holdout is not None:
        _filter_with_heldout(ctx, records)
        return
    report = apply_filters(records, ctx.components, ctx.component_context())
    write_report(report, ctx.dir)
    print_summary(report.summary)


def _filter_with_heldout(ctx: StageContext, records: list[SyntheticQuery]) -> None:
    """Filter the training queries and the held-out documents' queries (``generate/heldout.jsonl``) in one
    pass, so that both meet the same thresholds (a ``keep_top_k`` is taken over all of them), then write the
    kept held-out ones apart, to ``filter/heldout.jsonl``: ``queries.jsonl`` never holds one. Their rows in
    ``decisions.jsonl`` say ``"heldout": true``; ``summary.json`` counts them under ``heldout``."""
    held_path = ctx.path_of(HELDOUT_QUERIES)
    held = HELDOUT_QUERIES.read(held_path)
    held_ids = {r.query_id for r in held}
    clash = held_ids & {r.query_id for r in records}
    if clash:
        raise DataError(held_path, f"query_id {sorted(clash)[0]!r} is also in {ctx.path_of(SYNTHETIC_QUERIES)}")
    console.print(f"filter: {len(held):,} synthetic queries of held-out documents from {held_path}, in the same pass")
    report = apply_filters([*records, *held], ctx.components, ctx.component_context())
    kept = [r for r in report.kept if r.query_id not in held_ids]
    kept_held = [r for r in report.kept if r.query_id in held_ids]
    for row in report.decisions:
        row["heldout"] = row["query_id"] in held_ids
    report.summary["heldout"] = {"input": len(held), "kept": len(kept_held)}
    write_report(FilterReport(kept, report.decisions, report.summary), ctx.dir)
    write_jsonl(ctx.dir / KEPT_HELDOUT.file, (r.to_dict() for r in kept_held))
    print_summary(report.summary)
    console.print(
        f"filter: {len(kept_held):,} of {len(held):,} held-out queries kept for [estimate]; "
        f"{len(kept):,} of {len(records):,} for training",
        markup=False,
    )
