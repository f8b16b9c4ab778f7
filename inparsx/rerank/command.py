"""``inparsx rerank``: rerank one TREC run outside a recipe (same options as the ``[rerank]`` table).

Runs the rerank stage itself (:func:`inparsx.oneoff.run_to`) with the given run as the first stage, so the
resumable scores, the fused forms and a ``zero_shot_model`` or ``compare_models`` work as in ``inparsx run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from inparsx.artifacts import RUN, RUN_FILE, RUNS_FOLDER

if TYPE_CHECKING:
    from inparsx.rerank.options import RerankStageOptions

REFUSED = {"first_stage": "the command reranks the run given with --run"}
"""``[rerank]`` keys that ``inparsx rerank --set`` refuses (besides those given as flags), and what to do instead."""


def published_name(out: Path, run_name: str) -> Path:
    """Where a run the stage writes goes: its final run ``rerank`` is ``OUT``; ``rerank-alone`` is
    ``OUT-alone.trec``, ``zeroshot`` is ``OUT-zeroshot.trec``, a compared model ``ict`` is ``OUT-ict.trec``."""
    suffix = run_name[len("rerank") :] if run_name.startswith("rerank") else f"-{run_name}"
    return out.with_name(f"{out.stem}{suffix}{out.suffix}") if suffix else out


def rerank(
    run: Annotated[Path, typer.Option("--run", help="The TREC run to rerank (e.g. runs/x/retrieve/run.trec).")],
    dataset: Annotated[str, typer.Option(help="beir:<name>, irds:<id> or a BEIR folder.")],
    model: Annotated[str, typer.Option(help="Hub id or local folder of the reranker model.")],
    out: Annotated[Path, typer.Option(help="Where to write the reranked run (TREC).")],
    split: Annotated[str, typer.Option(help="The split whose queries the run holds.")] = "test",
    use: Annotated[
        str, typer.Option(help="Reranker: cross-encoder, monot5, bi-encoder or a plugin's.")
    ] = "cross-encoder",
    depth: Annotated[int | None, typer.Option(help="Documents per query to rescore (default 1000).")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="A rerank option: key=value (repeatable), e.g. dtype=fp32, interpolate=0.5."),
    ] = None,
) -> None:
    """Rerank a run's top DEPTH documents per query; documents below keep their order underneath.

    Resumable: an interrupted command keeps finished queries' scores in ``.<OUT name>.inparsx/`` and the same
    command run again continues from them. With --set interpolate=ALPHA (or --set fusion=rrf), OUT holds the
    run fused with the input run, as the recipe stage's final run does, and the model's ranking alone goes
    next to it (OUT-alone.trec; with both fusions, also OUT-rrf.trec). --set zero_shot_model=M adds
    OUT-zeroshot.trec (and its forms).
    """
    from inparsx.oneoff import refuse_without_labels, run_to
    from inparsx.progress import out as stdout
    from inparsx.recipe import one_stage_recipe

    recipe = one_stage_recipe(
        "rerank", use, set_ or [], dataset, eval_split=split, flags={"model": model, "depth": depth}, refused=REFUSED
    )
    refuse_without_labels(dataset, split, "reranked")
    written: list[Path] = []

    def outputs(folder: Path) -> dict[Path, Path]:
        found = {
            folder / RUN_FILE: out,
            **{path: published_name(out, path.stem) for path in sorted((folder / RUNS_FOLDER).glob("*.trec"))},
        }
        written.extend(found.values())
        return found

    first_stage = cast("RerankStageOptions", recipe.stages["rerank"].settings).first_stage  # the stage's options
    run_to(recipe, "rerank", out, outputs, inputs={"/".join(RUN.of(first_stage)): run})
    for path in written:
        stdout.print(f"wrote {path}", markup=False)
