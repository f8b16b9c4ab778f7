"""``inparsx eval``: score TREC runs against qrels, as the evaluate stage does, without a recipe.

Kept light: typer and pathlib at import; ranx loads when the command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from inparsx.errors import DataError, InparsxError
from inparsx.records import Qrels

RUN_HELP = (
    "A TREC run file, or NAME=PATH (repeatable; the first is the baseline). Default name: the file stem, "
    "or the parent folder when the stem is 'run' (runs/x/retrieve/run.trec is 'retrieve')."
)
QRELS_HELP = (
    "The qrels: a dataset split (beir:scifact/test, irds:beir/scifact/test, a BEIR folder/test) or a "
    "qrels file (TREC 'qid 0 docid rel' or BEIR TSV)."
)
METRICS_HELP = (
    "A metric (repeatable or comma-separated): ndcg@10, mrr@10, recall@100, map, precision@10, ... "
    "Default: ndcg@10, mrr@10, recall@100, recall@1000, map."
)


def default_run_name(path: Path) -> str:
    """A run's name from its path: the stem, or the parent folder's name when the stem is ``run``."""
    if path.stem == "run":
        return path.resolve().parent.name or path.stem
    return path.stem


def parse_run_args(values: list[str]) -> dict[str, Path]:
    """``--run`` values -> ``{name: path}`` in the given order.

    A value is ``NAME=PATH`` unless it is an existing path (a file name may hold ``=``).

    Raises:
        InparsxError: an empty name, or two runs with the same name (the message says how to name them).
    """
    runs: dict[str, Path] = {}
    for value in values:
        name, sep, raw = value.partition("=")
        if sep and not Path(value).exists():
            if not name.strip() or not raw.strip():
                raise InparsxError(f"--run {value!r}: expected PATH or NAME=PATH")
            name, path = name.strip(), Path(raw.strip()).expanduser()
        else:
            path = Path(value).expanduser()
            name = default_run_name(path)
        if name in runs:
            raise InparsxError(f"two runs are named {name!r} ({runs[name]} and {path}): name them with --run NAME=PATH")
        runs[name] = path
    return runs


def load_qrels(spec: str) -> Qrels:
    """Qrels from a qrels file, a local BEIR ``folder/split``, or a dataset split spec (``beir:scifact/test``).

    A dataset spec without a split is accepted when the dataset has exactly one split with qrels.

    Raises:
        DataError: a malformed qrels file. InparsxError: an unknown dataset, or a missing or ambiguous split.
    """
    from inparsx.datasets import resolve_dataset, split_spec
    from inparsx.io import read_qrels

    path = Path(spec).expanduser()
    if path.is_file():
        return read_qrels(path)
    dataset_spec, split = split_spec(spec)
    if split is None and not path.exists() and (path.parent / "qrels" / f"{path.name}.tsv").is_file():
        dataset_spec, split = str(path.parent), path.name
    try:
        dataset = resolve_dataset(dataset_spec)
        if split is None:
            splits = dataset.splits()
            if len(splits) != 1:
                raise InparsxError(
                    f"name a split, e.g. {spec}/{splits[0] if splits else 'test'}; "
                    f"available: {', '.join(splits) or '(none)'}"
                )
            split = splits[0]
        return dataset.qrels(split)
    except DataError:
        raise
    except InparsxError as exc:
        raise InparsxError(f"--qrels {spec}: {exc}") from None


def eval_command(
    run: Annotated[list[str], typer.Option("--run", "-r", help=RUN_HELP)],
    qrels: Annotated[str, typer.Option("--qrels", "-q", help=QRELS_HELP)],
    metrics: Annotated[list[str] | None, typer.Option("--metrics", "-m", help=METRICS_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only {run: {metric: value}} as JSON.")] = False,
    exclude_qids: Annotated[
        Path | None,
        typer.Option(
            "--exclude-qids",
            help="A file of query ids (one per line) to drop from qrels and runs, e.g. few-shot "
            "examples (a run directory's excluded_qids.txt).",
        ),
    ] = None,
    stat_test: Annotated[
        str | None,
        typer.Option(
            help="Significance test against the baseline: student "
            "(paired t-test, the default), fisher (randomisation) "
            "or tukey (HSD)."
        ),
    ] = None,
    max_p: Annotated[float | None, typer.Option(help="Significance level (default 0.05).")] = None,
    baseline: Annotated[
        str | None, typer.Option(help="The run the others are tested against (default: the first).")
    ] = None,
    n_permutations: Annotated[int | None, typer.Option(help="Permutations of the Fisher test (default 1000).")] = None,
    use: Annotated[str, typer.Option(help="The evaluator plugin.")] = "ranx",
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Another evaluator option: key=value (repeatable).")
    ] = None,
) -> None:
    """Score TREC runs against qrels: nDCG@10, MRR@10, recall@k, MAP, with significance against the first run.

    The evaluator is built from the same validated ``[evaluate]`` table as a recipe's, and the runs are scored
    by the evaluate stage's own code (:func:`inparsx.evaluate.stage.evaluate`); nothing is written.
    """
    from inparsx.evaluate.evaluation import read_qid_list, read_runs
    from inparsx.evaluate.metrics import canonical_metrics
    from inparsx.evaluate.stage import evaluate
    from inparsx.evaluate.table import print_results
    from inparsx.plugins import get_registry
    from inparsx.progress import out
    from inparsx.recipe import one_stage_recipe

    flags = {
        "metrics": canonical_metrics(metrics) if metrics else None,
        "stat_test": stat_test,
        "max_p": max_p,
        "baseline": baseline,
        "n_permutations": n_permutations,
    }
    recipe = one_stage_recipe("evaluate", use, set_ or [], flags=flags)
    name, options = recipe.stages["evaluate"].components[0]
    evaluator = get_registry().get("evaluators", name)(options)
    excluded = read_qid_list(exclude_qids) if exclude_qids else set()
    judged = load_qrels(qrels)
    evaluation = evaluate(
        evaluator, judged, read_runs(parse_run_args(run)), excluded, source=f", as listed in {exclude_qids}"
    )
    if as_json:
        typer.echo(json.dumps(evaluation.means, indent=2))
        return
    print_results(evaluation, out, f"qrels: {qrels}")
