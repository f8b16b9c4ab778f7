"""The results table: runs as rows, metrics as columns, significance markers against the baseline."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from inparsx.artifacts import SUMMARY
from inparsx.errors import InparsxError
from inparsx.evaluate.evaluation import Evaluation

GAIN, LOSS = "▲", "▼"


def results_table(evaluation: Evaluation, title: str | None = None) -> Table:
    """A rich table of ``evaluation``: one row per run, one column per metric (4 decimals, Pyserini's style).

    With several runs, the best value of each column is bold, and each other run's cell carries a green ▲ / red ▼
    when it is significantly above / below the baseline, followed by the p-value (dim when not significant).
    """
    table = Table(title=title)
    table.add_column("run", style="bold", no_wrap=True)
    for metric in evaluation.metrics:
        table.add_column(metric.label, justify="right", no_wrap=True)
    best = {m.name: max(v[m.name] for v in evaluation.means.values()) for m in evaluation.metrics}
    for run, values in evaluation.means.items():
        marker = " (baseline)" if evaluation.significance and run == evaluation.baseline else ""
        table.add_row(
            run + marker, *(_cell(evaluation, run, m.name, values[m.name], best[m.name]) for m in evaluation.metrics)
        )
    return table


SHALLOW = "†"
"""The mark of a metric deeper than its run (``recall@1000`` of a depth-100 run)."""


def _cell(evaluation: Evaluation, run: str, metric: str, value: float, best: float) -> str:
    text = f"{value:.4f}" + (SHALLOW if metric in evaluation.shallow.get(run, {}) else "")
    if len(evaluation.means) > 1 and value == best:
        text = f"[bold]{text}[/bold]"
    test = evaluation.significance.get(run, {}).get(metric)
    if test is None:
        return text
    p_text = f"p={test['p_value']:.3f}" if test["p_value"] >= 0.001 else "p<0.001"
    if not test["significant"]:
        return f"{text}  [dim]{p_text}[/dim]"
    gain = value > evaluation.means[evaluation.baseline][metric]  # type: ignore[index]
    return f"{text} [green]{GAIN}[/green] {p_text}" if gain else f"{text} [red]{LOSS}[/red] {p_text}"


def legend_parts(evaluation: Evaluation) -> tuple[list[str], list[str], str]:
    """The three parts of the legend under the table: what each run is (when its stage said so), one verdict
    line per declared pair (e.g. trained vs zero-shot reranker), and the footer (query count, the
    missing-query rule, the significance test)."""
    descriptions = [f"{name}: {text}" for name, text in evaluation.descriptions.items()]
    labels = {metric.name: metric.label for metric in evaluation.metrics}
    verdicts = [pair.line(labels) for pair in evaluation.pairs]
    footer = f"{len(evaluation.qids)} judged queries; a judged query missing from a run scores 0 (trec_eval -c)"
    if evaluation.shallow:
        depths = ", ".join(f"{run} {next(iter(deep.values()))}" for run, deep in evaluation.shallow.items())
        footer += f"\n{SHALLOW}: deeper than the run, which ranks at most so many documents per query ({depths})"
    if evaluation.significance:
        footer += f"\n{GAIN}/{LOSS}: significantly above/below {evaluation.baseline} ({evaluation.test_description})"
    return descriptions, verdicts, footer


def legend(evaluation: Evaluation) -> str:
    """The lines printed under the table (:func:`legend_parts`, joined)."""
    descriptions, verdicts, footer = legend_parts(evaluation)
    return "\n".join([*descriptions, *verdicts, footer])


def print_results(evaluation: Evaluation, console: Console, title: str | None = None) -> None:
    """Print the results table and its legend on ``console`` (descriptions and footer dim, verdicts plain).
    When that is not a terminal (a file, a pipe), the table keeps its full width rather than being squeezed
    into rich's default 80 columns."""
    table = results_table(evaluation, title)
    if not console.is_terminal:
        wide = console.options.update(max_width=10_000)
        width = max(console.width, Measurement.get(console, wide, table).maximum)
        console = Console(file=console.file, width=width, highlight=False, color_system=None, soft_wrap=True)
    console.print(table)
    descriptions, verdicts, footer = legend_parts(evaluation)
    for line in descriptions:
        console.print(line, style="dim", markup=False)
    for line in verdicts:
        console.print(line, markup=False)
    console.print(footer, style="dim")


def estimate_lines(run_dir: Path) -> list[str]:
    """One line per paired test of the estimate in ``run_dir`` (``estimate/summary.json``), for the evaluate
    stage to print beside the real metrics: ``label-free estimate (200 synthetic queries of held-out
    documents): did the trained model beat the zero-shot one? ...``; ``[]`` without an estimate."""
    try:
        summary = SUMMARY.read(SUMMARY.in_folder(run_dir, "estimate"))
    except (OSError, InparsxError):
        return []
    head = f"label-free estimate ({summary.get('queries', 0)} synthetic queries of held-out documents)"
    lines = []
    for pair in summary.get("pairs", []):
        metric, result = next(iter(pair["metrics"].items()))
        p_value = result["p_value"]
        lines.append(
            f"{head}: {pair['question']} {pair['verdict']}: {pair['run']} {result['value']:.4f} vs "
            f"{pair['against']} {result['against']:.4f} {metric} ({result['delta']:+.4f}, "
            + ("p<0.001" if p_value < 0.001 else f"p={p_value:.3f}")
            + ")"
        )
    return lines
