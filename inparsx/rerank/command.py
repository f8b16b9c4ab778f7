"""``inparsx rerank``: rerank one TREC run outside a recipe (same options as the ``[rerank]`` table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer


COMMAND_KEYS = {
    "model": "give it as --model",
    "depth": "give it as --depth",
    "first_stage": "the command reranks the run given with --run",
    "zero_shot_model": "rerank again with --model <zero-shot model> and another --out (the recipe stage's "
                       "zero_shot_model runs both)",
}
"""``[rerank]`` keys that ``inparsx rerank --set`` refuses, and what to do instead."""


def build_options(model: str, depth: Optional[int], settings: list[str]) -> dict[str, Any]:
    """The reranker's options from the command line: ``--model``, ``--depth`` and ``--set key=value`` (values
    parsed as TOML literals, as ``inparsx run --set`` does).

    Raises:
        RecipeError: a ``--set`` of an option that the command takes as a flag (``model``: ``--model``,
            ``depth``: ``--depth``) or that only the recipe stage reads (``first_stage``: the command reranks
            ``--run``; ``zero_shot_model``: run the command again with that ``--model``).
    """
    from inparsx.errors import RecipeError
    from inparsx.recipe import apply_override

    options: dict[str, Any] = {}
    for setting in settings:
        apply_override(options, setting)
    for key, instead in COMMAND_KEYS.items():
        if key in options:
            raise RecipeError("--set", key, f"not an option of the one-off command: {instead}")
    options["model"] = model
    if depth is not None:
        options["depth"] = depth
    return options


def rerank(run: Annotated[Path, typer.Option("--run", help="The TREC run to rerank (e.g. runs/x/retrieve/run.trec).")],
           dataset: Annotated[str, typer.Option(help="beir:<name>, irds:<id> or a BEIR folder.")],
           model: Annotated[str, typer.Option(help="Hub id or local folder of the reranker model.")],
           out: Annotated[Path, typer.Option(help="Where to write the reranked run (TREC).")],
           split: Annotated[str, typer.Option(help="The split whose queries the run holds.")] = "test",
           use: Annotated[str, typer.Option(help="Reranker: cross-encoder, monot5, bi-encoder or a plugin's.")] = "cross-encoder",
           depth: Annotated[Optional[int], typer.Option(help="Documents per query to rescore (default 1000).")] = None,
           set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="A reranker option: key=value (repeatable), e.g. dtype=fp32, interpolate=0.5.")] = None) -> None:
    """Rerank a run's top DEPTH documents per query; documents below keep their order underneath.

    Resumable: finished queries' scores are kept in OUT.scores.jsonl.partial until the run is written.
    With --set interpolate=ALPHA (or --set fusion=rrf), OUT holds the run fused with the input run, as the
    recipe stage's final run does, and the model's ranking alone goes next to it (OUT-alone.trec; with both
    fusions, also OUT-rrf.trec).
    """
    from inparsx.datasets import resolve_dataset
    from inparsx.io import ResumableJsonl, read_trec_run, write_trec_run
    from inparsx.plugins import get_registry
    from inparsx.progress import out as stdout
    from inparsx.rerank.reranking import candidates, document_texts
    from inparsx.rerank.stage import fused_runs, rerank_with_model

    reranker = get_registry().build("rerankers", use, build_options(model, depth, set_ or []))
    data = resolve_dataset(dataset)
    first_stage = read_trec_run(run)
    queries = {qid: q.text for qid, q in data.queries(split).items()}
    needed = {d for ids in candidates(first_stage, reranker.options.depth, queries).values() for d in ids}
    docs = document_texts(data, sorted(needed), run)
    reranker.use_corpus(data.fingerprint())
    store = ResumableJsonl(out.with_name(out.name + ".scores.jsonl"))
    scores, summary = rerank_with_model(reranker, model, first_stage, queries, docs, store, "rerank")
    for name, fused in fused_runs("run", first_stage, scores, reranker.options).items():
        path = out if name == "run" else out.with_name(f"{out.stem}{name[3:]}{out.suffix}")
        write_trec_run(path, fused, tag=f"inparsx-{reranker.name}")
        stdout.print(f"wrote {path}")
    store.path.unlink(missing_ok=True)
