"""The report's sections, each read from the files a stage wrote in the run directory.

Each builder takes a :class:`RunFiles` and returns a :class:`Section`, or ``None`` when its stage did not run
(its folder holds no completion marker or not the file it needs): such sections are left out, never shown
empty.
"""

from __future__ import annotations

import html
import json
import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from inparsx.artifacts import (
    CHECK,
    COMPARISON,
    ESTIMATE_COMPARISON,
    ESTIMATE_METRICS,
    ESTIMATE_NOTES,
    FILTER_DECISIONS,
    GENERATION_STATS,
    KEPT_QUERIES,
    METRICS,
    NOTES,
    PER_QUERY,
    QUERY_EVAL,
    SUMMARY,
    SYNTHETIC_QUERIES,
    TRAINING_INFO,
    TUNE_TRAINING,
    Artifact,
)
from inparsx.cachekey import DONE_MARKER
from inparsx.report import plots


def escape(text: str) -> str:
    """Text for an HTML text node (``<``, ``>``, ``&`` escaped; quotes kept as they are)."""
    return html.escape(text, quote=False)


TOP_QUERIES = 5
"""Queries listed under each per-query plot as the largest gains and the largest losses."""

SAMPLE_QUERIES = 20
"""Synthetic queries shown with their documents' titles."""

TUNE_QUERY_EVAL = QUERY_EVAL.file
"""A tuned generator's judge means before and after tuning (``{"documents", "judge", "before", "after"}``)."""


@dataclass
class Section:
    """A titled block of the report; ``body`` is HTML."""

    id: str
    title: str
    body: str


class RunFiles:
    """Read access to a run directory: JSON files, JSON lines, the filled recipe, and (lazily) the dataset."""

    def __init__(self, run_dir: Path):
        self.root = Path(run_dir)

    def done(self, stage: str) -> bool:
        """Whether ``stage`` finished (its completion marker exists)."""
        return (self.root / stage / DONE_MARKER).is_file()

    def path(self, target: str | Artifact, stage: str | None = None) -> Path:
        """The path of a declared artifact (:mod:`inparsx.artifacts`; ``stage`` for one any stage writes), or
        of a path relative to the run directory."""
        return target.in_folder(self.root, stage) if isinstance(target, Artifact) else self.root / target

    def json(self, target: str | Artifact, stage: str | None = None) -> Any:
        """The JSON file of ``target`` (see :meth:`path`; ``None`` when absent).

        Raises:
            DataError: a file that is not UTF-8 or not valid JSON (torn by a crash), named with its line.
        """
        from inparsx.io import read_json

        path = self.path(target, stage)
        return read_json(path) if path.is_file() else None

    def jsonl(self, target: str | Artifact, stage: str | None = None) -> list[dict[str, Any]]:
        """The records of a JSON-lines file (see :meth:`path`; ``[]`` when absent)."""
        from inparsx.io import read_jsonl

        path = self.path(target, stage)
        return [obj for _, obj in read_jsonl(path)] if path.is_file() else []

    @cached_property
    def recipe_text(self) -> str:
        """The filled recipe's TOML text (``''`` when ``recipe.toml`` is absent)."""
        path = self.root / "recipe.toml"
        return path.read_text(encoding="utf-8") if path.is_file() else ""

    @cached_property
    def recipe(self) -> dict[str, Any]:
        """The filled recipe as a dict (``{}`` when absent)."""
        import tomllib

        return tomllib.loads(self.recipe_text) if self.recipe_text else {}

    @cached_property
    def dataset(self):
        """The recipe's dataset, or ``None`` when it cannot be loaded here (titles and query texts are then
        left out)."""
        from inparsx.datasets import resolve_dataset
        from inparsx.errors import InparsxError

        name = self.recipe.get("dataset", {}).get("name")
        try:
            return resolve_dataset(name) if name else None
        except (InparsxError, OSError):
            return None

    def query_texts(self) -> dict[str, str]:
        """Evaluated queries by id (``{}`` without the dataset)."""
        split = self.recipe.get("dataset", {}).get("eval_split", "test")
        if self.dataset is None or not self.dataset.has_labels():
            return {}
        return {qid: query.text for qid, query in self.dataset.queries(split).items()}


def table(header: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    """An HTML table; cells are escaped; columns in ``numeric`` are right-aligned."""
    numeric = numeric or set()
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{escape(str(c))}</td>' if i in numeric else f"<td>{escape(str(c))}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def recipe_section(files: RunFiles) -> Section | None:
    """The filled recipe (``recipe.toml``, every default written in)."""
    if not files.recipe_text:
        return None
    return Section("recipe", "Recipe (filled)", f"<pre>{escape(files.recipe_text)}</pre>")


def check_section(files: RunFiles) -> Section | None:
    """The collection check the retrieve stage wrote (``retrieve/check.json``)."""
    report = files.json(CHECK)
    if report is None:
        return None
    rows = [
        [kind, found["level"], found["meaning"], found["count"], "; ".join(_where(e) for e in found["examples"])]
        for kind, found in report["findings"].items()
    ]
    fit = report.get("fit_for")
    verdict = "" if fit is None else f" Fit for: {', '.join(fit) or 'nothing until the errors are fixed'}."
    head = (
        f"<p>{escape(report['dataset'])}: {report['errors']} errors, {report['warnings']} warnings, "
        f"{report['notes']} notes.{escape(verdict)}</p>"
    )
    return Section(
        "check",
        "Collection check",
        head + (table(["kind", "level", "meaning", "count", "first occurrences"], rows, {3}) if rows else ""),
    )


def _where(example: dict[str, Any]) -> str:
    text = f"{example['file']}:{example['line']}" if example.get("line") else example["file"]
    return text + (f" id {example['id']!r}" if example.get("id") is not None else "")


def metrics_section(files: RunFiles) -> Section | None:
    """Every run's metrics, with the difference to the baseline, the p-value and a mark when significant; run
    descriptions; and the verdict of each declared pair (trained vs zero-shot)."""
    means = files.json(METRICS)
    if not means:
        return None
    comparison = files.json(COMPARISON) or {}
    return Section("metrics", "Results", _results_body(means, comparison, _run_notes(files)))


def estimate_section(files: RunFiles) -> Section | None:
    """The label-free estimate (``estimate/``): the metrics of the first stage, the trained and the zero-shot
    model on synthetic queries of held-out documents, with the paired tests, under a heading that says what it
    is."""
    means, summary = files.json(ESTIMATE_METRICS), files.json(SUMMARY, "estimate") or {}
    if not means:
        return None
    head = (
        f"<p>Not a measurement on real queries: {summary.get('queries', '?')} synthetic queries, written by the "
        f"recipe's generator for {summary.get('documents', '?')} of {summary.get('held_out', '?')} documents held "
        "out of training, each judged relevant to its source document only.</p>"
    )
    notes = (files.json(ESTIMATE_NOTES) or {}).get("runs", {})
    return Section(
        "estimate", "Label-free estimate", head + _results_body(means, files.json(ESTIMATE_COMPARISON) or {}, notes)
    )


def _results_body(means: dict[str, Any], comparison: dict[str, Any], notes: dict[str, str]) -> str:
    """The metrics table of ``means`` with the tests of ``comparison`` (``comparison.json``), the runs'
    descriptions and the verdicts of the declared pairs."""
    baseline, tested = comparison.get("baseline"), comparison.get("runs", {})
    metrics = list(next(iter(means.values())))
    rows = []
    for run, values in means.items():
        cells = [run]
        for metric in metrics:
            test = tested.get(run, {}).get(metric)
            mark = (
                ""
                if test is None
                else f" ({test['delta']:+.4f}, p={test['p_value']:.3g}){' *' if test['significant'] else ''}"
            )
            cells.append(f"{values[metric]:.4f}{mark}")
        rows.append(cells)
    body = table(["run", *metrics], rows, set(range(1, len(metrics) + 1)))
    if baseline:
        body += (
            f"<p>In brackets: difference to <b>{escape(baseline)}</b> and p-value "
            f"({escape(comparison.get('test', ''))}, {comparison.get('queries', '?')} queries); "
            "* marks a significant difference.</p>"
        )
    if notes:
        body += (
            "<ul>"
            + "".join(f"<li><b>{escape(run)}</b>: {escape(text)}</li>" for run, text in notes.items() if run in means)
            + "</ul>"
        )
    for pair in comparison.get("pairs", []):
        metric, result = next(iter(pair["metrics"].items()))
        body += (
            f"<p>{escape(pair['question'])} <b>{escape(pair['verdict'])}</b>: {escape(pair['run'])} "
            f"{result['value']:.4f} vs {escape(pair['against'])} {result['against']:.4f} {escape(metric)} "
            f"({result['delta']:+.4f}, p={result['p_value']:.3g})</p>"
        )
    return body


def _run_notes(files: RunFiles) -> dict[str, str]:
    from inparsx.recipe import STAGES

    notes: dict[str, str] = {}
    for stage in STAGES:  # the estimate's notes are ESTIMATE_NOTES
        notes.update((files.json(NOTES, stage) or {}).get("runs", {}))
    return notes


def per_query_section(files: RunFiles) -> Section | None:
    """Sorted per-query differences of the first metric: the final run against the baseline (e.g. the trained
    reranker against BM25) and each declared pair (trained against zero-shot), with the queries that gained
    and lost most."""
    per_query = files.json(PER_QUERY)
    comparison = files.json(COMPARISON) or {}
    baseline = comparison.get("baseline")
    if not per_query or not baseline:
        return None
    final = "rerank" if "rerank" in per_query else list(per_query)[-1]
    pairs = [(final, baseline)] if final != baseline else []
    pairs += [(p["run"], p["against"]) for p in comparison.get("pairs", []) if (p["run"], p["against"]) not in pairs]
    metric = next(iter(per_query[baseline]))
    texts = files.query_texts()
    body = "".join(
        _one_pair(per_query, run, against, metric, texts)
        for run, against in pairs
        if run in per_query and against in per_query
    )
    return Section("per-query", f"Per-query {metric} differences", body) if body else None


def _one_pair(per_query: dict, run: str, against: str, metric: str, texts: dict[str, str]) -> str:
    ours, theirs = per_query[run][metric], per_query[against][metric]
    deltas = sorted(((ours[q] - theirs.get(q, 0.0), q) for q in ours), reverse=True)
    body = f"<h3>{escape(run)} against {escape(against)}</h3>"
    body += plots.delta_bars([d for d, _ in deltas], metric, run, against)
    for label, chosen in (
        ("gained most", [x for x in deltas if x[0] > 0][:TOP_QUERIES]),
        ("lost most", [x for x in reversed(deltas) if x[0] < 0][:TOP_QUERIES]),
    ):
        if chosen:
            rows = [
                [qid, texts.get(qid, ""), f"{theirs.get(qid, 0.0):.3f}", f"{ours[qid]:.3f}", f"{d:+.3f}"]
                for d, qid in chosen
            ]
            body += f"<h4>Queries that {label}</h4>" + table(["qid", "query", against, run, "Δ"], rows, {2, 3, 4})
    return body


def filter_section(files: RunFiles) -> Section | None:
    """The filters' drop reasons and counts (``filter/summary.json``)."""
    summary = files.json(SUMMARY, "filter")
    if summary is None or not files.done("filter"):
        return None
    rows, reasons = [], {}
    for step in summary["filters"]:
        dropped = sorted(step["dropped"].items(), key=lambda item: -item[1]) or [("", 0)]
        for reason, count in dropped:
            rows.append([step["filter"], f"{step['in']:,}", f"{step['kept']:,}", f"{count:,}", reason])
            if count:
                reasons[f"{step['filter']}: {reason}"] = count
    warnings = "".join(
        f"<p><b>warning:</b> {escape(step['warning'])}</p>" for step in summary["filters"] if step.get("warning")
    )
    body = (
        f"<p>Kept {summary['kept']:,} of {summary['input']:,} synthetic queries.</p>"
        + warnings
        + table(["filter", "in", "kept", "dropped", "reason"], rows, {1, 2, 3})
    )
    if reasons:
        body += plots.horizontal_bars(reasons, "synthetic queries dropped, by filter and reason", "queries")
    return Section("filter", "Filters", body)


def queries_section(files: RunFiles) -> Section | None:
    """Histograms of synthetic query length (words) and scores (the generator's mean log-probability, each
    filter's score), generated against kept."""
    generated = files.jsonl(SYNTHETIC_QUERIES) if files.done("generate") else []
    if not generated:
        return None
    kept = files.jsonl(KEPT_QUERIES) if files.done("filter") else []
    lengths = {"generated": [len(r["query"].split()) for r in generated]}
    if kept:
        lengths["kept by the filters"] = [len(r["query"].split()) for r in kept]
    body = plots.histogram(lengths, "words", "synthetic query length")
    scores = {"generated": [r["score"] for r in generated if r.get("score") is not None]}
    if scores["generated"]:
        if kept:
            scores["kept by the filters"] = [r["score"] for r in kept if r.get("score") is not None]
        body += plots.histogram(scores, "mean token log-probability", "generator score (InPars eq. 1)")
    else:
        body += f"<p>The generator ({escape(generated[0].get('generator', '?'))}) writes no score.</p>"
    for name, values in _filter_scores(files).items():
        body += plots.histogram({"scored": values}, f"{name} score", f"filter {name}: scores of the queries it saw")
    return Section("queries", "Synthetic queries", body)


def _filter_scores(files: RunFiles) -> dict[str, list[float]]:
    """Each filter's scores from ``filter/decisions.jsonl`` (the length filter's, a word count, is left out)."""
    found: dict[str, list[float]] = {}
    for row in files.jsonl(FILTER_DECISIONS) if files.done("filter") else []:
        for name, score in (row.get("scores") or {}).items():
            if name != "length" and isinstance(score, (int, float)):
                found.setdefault(name, []).append(float(score))
    return found


def samples_section(files: RunFiles) -> Section | None:
    """:data:`SAMPLE_QUERIES` synthetic queries (kept ones when the filter ran), drawn with the recipe's seed,
    with their documents' titles."""
    queries = KEPT_QUERIES if files.done("filter") else SYNTHETIC_QUERIES
    source = "/".join(queries.of())
    records = files.jsonl(queries) if files.done(queries.of()[0]) else []
    if not records:
        return None
    seed = files.recipe.get("recipe", {}).get("seed", 1)
    chosen = random.Random(seed).sample(records, min(SAMPLE_QUERIES, len(records)))
    docs = files.dataset.get_docs(r["doc_id"] for r in chosen) if files.dataset is not None else {}
    rows = [[r["query"], r["doc_id"], docs[r["doc_id"]].title if r["doc_id"] in docs else ""] for r in chosen]
    return Section(
        "samples",
        f"{len(rows)} sample synthetic queries",
        f"<p>Drawn from {escape(source)} with seed {seed}.</p>"
        + table(["synthetic query", "doc id", "document title"], rows),
    )


def training_section(files: RunFiles) -> Section | None:
    """The training loss by step, from the loss history the trainer stores beside the model
    (``train/model/inparsx_training.json``)."""
    info = files.json(TRAINING_INFO) if files.done("train") else None
    if not info or not info.get("loss_history"):
        return None
    points = [(entry["step"], entry["loss"]) for entry in info["loss_history"]]
    metrics = info.get("metrics", {})
    facts = [
        f"{info['trainer']} from {info['base_model']}",
        f"{info['num_triples']:,} triples",
        f"{metrics.get('global_step', points[-1][0])} steps",
    ]
    if "train_runtime" in metrics:
        facts.append(f"{metrics['train_runtime']:.0f} s")
    body = f"<p>{escape(', '.join(facts))}.</p>" + plots.line(points, "step", "loss", "training loss")
    return Section("training", "Training", body)


def tune_section(files: RunFiles) -> Section | None:
    """A tune stage's candidates and scores: every ``tune/*.json`` holding a ``candidates`` list (the ``path``
    tuner's ``path.json``: ``{"metric", "best", "candidates": [{"instruction", "score", ...}]}``) as a table and a
    bar plot, and a tuned generator's before/after judge means (the ``cpo`` tuner's ``query_eval.json``)."""
    if not files.done("tune"):
        return None
    body = ""
    for path in sorted(files.path(QUERY_EVAL).parent.glob("*.json")):
        found = files.json(path.relative_to(files.root).as_posix())
        if isinstance(found, dict) and isinstance(found.get("candidates"), list) and found["candidates"]:
            body += _candidates(found, path.name)
    evaluation = files.json(QUERY_EVAL)
    if isinstance(evaluation, dict) and evaluation.get("before") is not None and evaluation.get("after") is not None:
        body += (
            f"<p>Judge ({escape(str(evaluation.get('judge', '?')))}) mean score of greedy queries on "
            f"{evaluation.get('documents', '?')} held-out documents: before tuning {evaluation['before']:.4f}, "
            f"after {evaluation['after']:.4f}.</p>"
        )
    return Section("tune", "Tuning", body) if body else None


def _candidates(found: dict[str, Any], name: str) -> str:
    candidates = found["candidates"]
    metric = str(found.get("metric", "score"))
    keys = list(dict.fromkeys(key for candidate in candidates for key in candidate))
    rows = [[i + 1, *(_cell(candidate.get(key, "")) for key in keys)] for i, candidate in enumerate(candidates)]
    body = f"<p>{len(candidates)} candidates ({escape(name)}), scored by {escape(metric)}"
    body += (f"; best: {escape(str(found['best']))}" if found.get("best") is not None else "") + ".</p>"
    body += table(["#", *keys], rows, {0})
    scored = [(i + 1, c["score"]) for i, c in enumerate(candidates) if isinstance(c.get("score"), (int, float))]
    if scored:
        body += plots.score_bars(
            [f"#{i}" for i, _ in scored],
            [float(v) for _, v in scored],
            metric,
            f"tune: each candidate's {metric} (best in green)",
        )
    return body


def ran_section(files: RunFiles) -> Section | None:
    """The device and precision each model ran with (resolved, never ``auto``): the generator
    (``generate/queries.stats.json``), the CPO tuner (``tune/training.json``), the trainer
    (``train/model/inparsx_training.json``) and every reranked model (``rerank/summary.json``)."""
    rows = []
    stats = files.json(GENERATION_STATS) if files.done("generate") else None
    if isinstance(stats, dict) and stats.get("ran_with"):
        rows.append(_ran_row("generate", stats["ran_with"].get("model", ""), stats["ran_with"]))
    tuned = files.json(TUNE_TRAINING) if files.done("tune") else None
    if isinstance(tuned, dict) and tuned.get("precision"):
        rows.append(_ran_row("tune (training)", tuned.get("options", {}).get("base_model", ""), tuned))
    info = files.json(TRAINING_INFO) if files.done("train") else None
    if isinstance(info, dict) and info.get("precision"):
        rows.append(_ran_row("train", info.get("base_model", ""), info))
    summary = files.json(SUMMARY, "rerank") if files.done("rerank") else None
    for name, job in (summary or {}).items():
        if isinstance(job, dict) and job.get("precision"):
            rows.append(_ran_row(f"rerank: {name}", job.get("model", ""), job))
    if not rows:
        return None
    return Section("ran", "Devices and precision", table(["stage", "model", "device", "precision", "why"], rows))


def _ran_row(stage: str, model: str, ran: dict[str, Any]) -> list[str]:
    return [
        stage,
        model,
        str(ran.get("device", "")),
        str(ran.get("precision", "")),
        str(ran.get("precision_reason", "")),
    ]


def _cell(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)


BUILDERS = (
    metrics_section,
    estimate_section,
    per_query_section,
    filter_section,
    queries_section,
    samples_section,
    training_section,
    tune_section,
    ran_section,
    check_section,
    recipe_section,
)
"""The sections in report order: results first, then what produced them, then the inputs (data, recipe)."""
