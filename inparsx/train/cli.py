"""``inparsx train``: a one-off fine-tuning run on a triples file, outside a recipe.

Takes the same options as a recipe's ``[train]`` table (``--set key=value``) and runs the train stage itself
(:func:`inparsx.oneoff.run_to`), so checkpoints, resumption and the model card are those of ``inparsx run``.
For several GPUs, start it under accelerate: ``accelerate launch -m inparsx.cli.main train ...`` (Hugging
Face's ``Trainer`` then runs data-parallel; only the main process writes the model and its card).
"""

from pathlib import Path


def train_once(triples: Path, use: str, sets: list, out: Path) -> Path:
    """Train trainer ``use`` with the ``--set`` items ``sets`` as its options on ``triples``; the model and its
    card end in ``out``, which must not be a folder with files in it.

    Raises:
        PluginError: unknown trainer name. RecipeError: a malformed ``--set`` item, an option the trainer does
            not have or a bad value. DataError: malformed triples. InparsxError: ``out`` is taken.
    """
    from inparsx.artifacts import TRAINED_MODEL, TRIPLES
    from inparsx.devices import is_main_process
    from inparsx.oneoff import refuse_existing, run_to
    from inparsx.recipe import one_stage_recipe

    recipe = one_stage_recipe("train", use, sets)
    if is_main_process():
        refuse_existing(out)
    run_to(
        recipe,
        "train",
        out,
        lambda folder: {folder / TRAINED_MODEL.file: out},
        inputs={"/".join(TRIPLES.of()): triples},
    )
    return out


def add_train_command(app) -> None:
    """Register ``inparsx train`` on the Typer ``app``."""
    from typing import Annotated

    import typer

    @app.command("train")
    def train(
        triples: Annotated[Path, typer.Option("--triples", help="A triples.jsonl file (inparsx Triple records).")],
        out: Annotated[Path, typer.Option("--out", help="Folder for the trained model and its model card.")],
        use: Annotated[
            str, typer.Option("--use", help="Trainer: cross-encoder, bi-encoder or monot5.")
        ] = "cross-encoder",
        set_: Annotated[
            list[str] | None, typer.Option("--set", "-s", help="An option of the train table: key=value (repeatable).")
        ] = None,
    ) -> None:
        """Fine-tune a reranker on a triples file, with the options of a recipe's train table."""
        from inparsx.progress import out as stdout

        model_dir = train_once(triples, use, set_ or [], out)
        stdout.print(f"model saved to {model_dir}")
