"""``inparsx train``: a one-off fine-tuning run on a triples file, outside a recipe.

Takes the same options as a recipe's ``[train]`` table (``--set key=value``). For several GPUs, start it
under accelerate: ``accelerate launch -m inparsx.cli.main train ...`` (Hugging Face's ``Trainer`` then runs
data-parallel; only the main process writes the model and its card).
"""

from pathlib import Path
from typing import Any

from inparsx.errors import RecipeError


def parse_sets(values: list[str]) -> dict[str, Any]:
    """``key=value`` strings -> options (values parsed as TOML literals, else kept as strings); a leading
    ``train.`` is accepted, so a recipe's ``--set train.x=1`` works here too.

    Raises:
        RecipeError: a value without ``=`` or a dotted key other than ``train.<key>``.
    """
    from inparsx.recipe import apply_override

    data: dict[str, Any] = {}
    for value in values:
        key = value.partition("=")[0].strip()
        if key.startswith("train."):
            value = value.strip()[len("train."):]
        elif "." in key:
            raise RecipeError("--set", key, "expected key=value with a [train] option, e.g. base_model=PATH")
        apply_override(data, value)
    return data


def train_once(triples: Path, use: str, sets: list, out: Path) -> Path:
    """Build trainer ``use`` with ``sets`` as its options, train on ``triples`` and save into ``out``.

    Raises:
        PluginError: unknown trainer name. RecipeError: an option the trainer does not have or a bad value.
        DataError: malformed triples.
    """
    from pydantic import ValidationError

    from inparsx.plugins import get_registry
    from inparsx.recipe import _report

    cls = get_registry().get("trainers", use)
    try:
        options = cls.Options(**parse_sets(sets))
    except ValidationError as exc:
        errors: list[RecipeError] = []
        _report(exc, cls.Options, "train", lambda key, reason: errors.append(RecipeError("--set", key, reason)))
        raise errors[0] from None
    return cls(options).train(triples, out)


def add_train_command(app) -> None:
    """Register ``inparsx train`` on the Typer ``app``."""
    from typing import Annotated, Optional

    import typer

    @app.command("train")
    def train(triples: Annotated[Path, typer.Option("--triples", help="A triples.jsonl file (inparsx Triple records).")],
              out: Annotated[Path, typer.Option("--out", help="Folder for the trained model and its model card.")],
              use: Annotated[str, typer.Option("--use", help="Trainer: cross-encoder, bi-encoder or monot5.")] = "cross-encoder",
              set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="An option of the train table: key=value (repeatable).")] = None) -> None:
        """Fine-tune a reranker on a triples file, with the options of a recipe's train table."""
        from inparsx.progress import out as stdout

        model_dir = train_once(triples, use, set_ or [], out)
        stdout.print(f"model saved to {model_dir}")
