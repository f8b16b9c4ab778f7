"""What a sweep runs: a base recipe, named variants and a grid of options, seeds; and how its table is laid out.

A sweep is given on the command line (``inparsx sweep RECIPE --grid KEY=V1,V2 --seeds 1,2,3``) or by a sweep
file, a TOML file whose ``[sweep]`` table names the base recipe (the command line adds to it)::

    [sweep]
    name = "lr-sweep"                    # the sweep folder: runs/<name> (default: the file's name)
    recipe = "../scifact-quickstart.toml"   # the base recipe, relative to this file
    seeds = [1, 2, 3]                    # each run's [recipe] seed
    set = ["retrieve.seed=1"]            # --set items of every run
    metric = "ndcg@10"                   # the table's metric (default: the evaluate stage's first)
    baseline = "ict"                     # paired tests against this variant (default: the first)
    curve = "gold train queries"         # the x axis of variants that give an x

    [variants.ict]                       # named variants, each a list of --set items (TOML literals)
    set = []
    [variants.gold-10]
    set = ['generate={use = "qrels", num_queries = 10}']
    x = 10                               # its place on the curve
    label = "10 gold queries"            # its name in the table (default: the variant's name)

    [grid]                               # crossed with every variant
    "train.learning_rate" = [1e-5, 2e-5]

    [columns]                            # the table's columns: column name -> a run of evaluate/metrics.json
    "model alone" = "rerank-alone"
    "+ BM25" = "rerank"

    [[rows]]                             # rows beside the variants: runs every variant computes the same way
    name = "BM25"
    variant = "ict"
    runs = {"model alone" = "retrieve"}

    [[compare]]                          # paired tests of every cell against a baseline cell
    name = "against BM25"
    row = "BM25"                         # a row, a variant, or grid values ("train.learning_rate=2e-05")
    column = "model alone"               # the baseline's column (default: the tested cell's)

A baseline named by a variant or by grid values is matched on the rest: ``row = "gold-10"`` compares each
grid combination with gold-10's at the same grid values. Every run is ``inparsx run RECIPE --set ...`` with the
sweep's items, the variant's, the grid's and ``recipe.seed=S``, in the folder ``<sweep>/<variant>/seed-<S>``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli
from pydantic import Field, ValidationError, field_validator

from inparsx.errors import InparsxError, RecipeError
from inparsx.plugins import Options, Registry, get_registry
from inparsx.recipe import Recipe, RecipeErrors, _Locator, _unknown, load_recipe, parse_set
from inparsx.sweep.values import SEED_KEY, array_line, display, parse_grid, parse_seeds, toml_literal

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
"""A variant's name: a folder name (letters, digits, ``.``, ``_``, ``-``)."""


class SweepInfo(Options):
    """The ``[sweep]`` table of a sweep file."""

    recipe: str = Field(description="the base recipe, relative to the sweep file")
    name: str | None = Field(None, description="the sweep's name and folder under runs/ (default: the file's name)")
    description: str = ""
    seeds: list[int] | None = Field(None, min_length=1, description="each run's [recipe] seed (default: the recipe's)")
    set: list[str] = Field(default_factory=list, description="--set items of every run")
    metric: str | None = Field(None, description="the table's metric (default: the evaluate stage's first)")
    baseline: str | None = Field(None, description="paired tests against this row when no [[compare]] is given")
    curve: str | None = Field(None, description="the x axis label of the variants that give an x")

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds repeat: {seeds}")
        return seeds


class VariantConfig(Options):
    """One ``[variants.<name>]`` table: the ``--set`` items that make the variant."""

    set: list[str] = Field(default_factory=list)
    label: str | None = None
    x: float | None = None


class RowConfig(Options):
    """One ``[[rows]]`` table: a row of runs that a variant computes beside its own (BM25, the zero-shot model)."""

    name: str
    variant: str | None = None
    runs: dict[str, str] = Field(min_length=1)


class CompareConfig(Options):
    """One ``[[compare]]`` table: every cell is tested against the cell of ``row`` (in ``column``, or its own)."""

    name: str
    row: str
    column: str | None = None


class SweepFile(Options):
    """A sweep file: ``[sweep]`` and the optional ``[variants.*]``, ``[grid]``, ``[columns]``, ``[[rows]]`` and
    ``[[compare]]`` tables (see the module docstring)."""

    sweep: SweepInfo
    variants: dict[str, VariantConfig] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    columns: dict[str, str] = Field(default_factory=dict)
    rows: list[RowConfig] = Field(default_factory=list)
    compare: list[CompareConfig] = Field(default_factory=list)


@dataclass(frozen=True)
class Origin:
    """Where a ``--set`` item of a run comes from, for errors: a file, key and line, or a command-line option.
    ``grid``: the origin is a grid key, which names the item's key (its errors need not repeat the item)."""

    file: str
    key: str
    line: int | None = None
    grid: bool = False


@dataclass
class Variant:
    """One row of the sweep: a named variant (``name``, ``""`` when the sweep has none) at one grid combination.

    ``id``: the name and the grid assignments joined by ``,`` (``gold-10,train.learning_rate=2e-05``), unique;
    ``folder``: its folder under the sweep folder; ``sets``: its ``--set`` items (the variant's, then the grid's).
    """

    name: str
    grid: dict[str, Any]
    sets: list[str]
    id: str
    label: str
    folder: str
    x: float | None = None

    def matches(self, spec: dict[str, Any]) -> bool:
        """Whether this variant has every part of a baseline spec (``{"": name, key: value}``)."""
        return all(
            (self.name == value) if key == "" else (key in self.grid and self.grid[key] == value)
            for key, value in spec.items()
        )


@dataclass
class SweepRun:
    """One run of the sweep: a variant with a seed, in its own run folder; ``sets`` are every ``--set`` item of
    its ``inparsx run`` (the sweep's, the variant's, ``recipe.seed=S``)."""

    variant: Variant
    seed: int
    run_dir: Path
    sets: list[str]

    @property
    def name(self) -> str:
        return f"{self.variant.id} seed {self.seed}"


@dataclass
class Row:
    """A row of the table: a variant's own runs (``runs`` is ``None``: the column's run), or a ``[[rows]]``
    entry naming which run of ``variant`` fills each column."""

    name: str
    variant: Variant
    runs: dict[str, str] | None = None
    fixed: bool = False

    def run_name(self, column: str, columns: dict[str, str]) -> str | None:
        """The run (a name in ``evaluate/metrics.json``) of this row in ``column``; ``None``: no cell."""
        if self.runs is not None:
            return self.runs.get(column)
        return columns.get(column)


@dataclass
class Compare:
    """Paired tests of every cell against a baseline: the row ``row`` (a row or variant name, or grid values
    matched against each tested variant) in ``column`` (``None``: the tested cell's column)."""

    name: str
    row: str
    column: str | None = None


@dataclass
class Sweep:
    """A sweep, expanded: every run, the rows and columns of its table, and its tests."""

    name: str
    source: str
    recipe_path: Path
    sets: list[str]
    seeds: list[int]
    variants: list[Variant]
    columns: dict[str, str]
    extra_rows: list[Row]
    compares: list[Compare]
    sweep_dir: Path
    store: Path
    metric: str | None = None
    curve: str | None = None
    description: str = ""
    origins: dict[str, Origin] = field(default_factory=dict)

    def runs(self) -> list[SweepRun]:
        """Every run, seed by seed (all variants of the first seed first, so a partial sweep has a full table of
        one seed), variants in order."""
        return [
            SweepRun(
                variant,
                seed,
                self.sweep_dir / variant.folder / f"seed-{seed}",
                [*self.sets, *variant.sets, f"{SEED_KEY}={seed}"],
            )
            for seed in self.seeds
            for variant in self.variants
        ]

    def rows(self) -> list[Row]:
        """The table's rows: the ``[[rows]]`` entries, then one per variant."""
        return [*self.extra_rows, *(Row(v.label, v) for v in self.variants)]

    def recipe(self, run: SweepRun, registry: Registry | None = None) -> Recipe:
        """The validated recipe of ``run``.

        Raises:
            RecipeError, RecipeErrors: as :func:`inparsx.recipe.load_recipe`, pointed at the sweep file's line
                (or the command-line option) that gave the offending ``--set`` item.
        """
        try:
            return load_recipe(self.recipe_path, run.sets, registry)
        except RecipeErrors as exc:
            raise RecipeErrors([self._blame(error, run) for error in exc.errors]) from None
        except RecipeError as exc:
            raise self._blame(exc, run) from None

    def _blame(self, error: RecipeError, run: SweepRun) -> RecipeError:
        """``error`` pointed at the origin of the ``--set`` item whose key covers the error's key."""
        best = None
        for item in run.sets:
            key = item.partition("=")[0].strip()
            if (error.key == key or error.key.startswith(key + ".")) and (best is None or len(key) > len(best[0])):
                best = (key, item)
        origin = self.origins.get(best[1]) if best else None
        if best is None or origin is None:
            return error
        if origin.grid:
            reason = error.reason if error.key == best[0] else f"{error.key}: {error.reason}"
            return RecipeError(origin.file, origin.key, reason, origin.line)
        return RecipeError(origin.file, origin.key, f"{best[1]}: {error.key}: {error.reason}", origin.line)


# ---------------------------------------------------------------------------------------------------------
# Reading a sweep from a file or the command line


def is_sweep_file(path: str | Path) -> bool:
    """Whether ``path`` is a sweep file (a TOML file with a ``[sweep]`` table) rather than a recipe."""
    try:
        return "sweep" in tomli.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomli.TOMLDecodeError, UnicodeDecodeError):
        return False


def load_sweep(
    path: str | Path,
    grid: list[str] | None = None,
    seeds: str | None = None,
    sets: list[str] | None = None,
    baseline: str | None = None,
    sweep_dir: str | Path | None = None,
    store: str | Path | None = None,
    registry: Registry | None = None,
) -> Sweep:
    """A sweep from a sweep file or a recipe, with the command line's additions, every run's recipe validated.

    Args:
        path: a sweep file (with ``[sweep]``) or a recipe (the sweep is then ``grid`` x ``seeds`` of it).
        grid: ``--grid`` items, ``KEY=V1,V2,...`` (values are TOML literals; commas inside brackets, braces or
            quotes do not split); added to the file's ``[grid]`` (a key given in both: the command line's).
        seeds: ``--seeds``, ``1,2,3`` (replaces the file's; default: the file's, else the recipe's seed).
        sets: ``--set`` items of every run, after the file's.
        baseline: ``--baseline``: one more paired test, of every cell against this row in its own column.
        sweep_dir: the sweep's folder (default ``runs/<name>``, the name being the sweep file's ``name`` or
            its file name, or ``<recipe file name>-sweep``); store: the stage store (default ``<sweep_dir>/store``).
        registry: components to validate against (default: the entry-point registry).

    Raises:
        RecipeError: a bad grid, seed list, set item or sweep file (file, line and key named; one line).
        RecipeErrors: several problems, or a run's recipe that does not validate (pointed at the item that
            made it invalid).
    """
    path = Path(path)
    text = _read(path)
    data = _parse(path, text)
    origins: dict[str, Origin] = {}
    if "sweep" in data:
        config = _validate_file(path, text, data)
        locate = _Locator(text)
        recipe_path = Path(os.path.normpath(path.parent / config.sweep.recipe))
        name = config.sweep.name or path.stem
        file_sets = _origin_items(config.sweep.set, Origin(str(path), "sweep.set", locate("sweep.set")), origins)
        named = {key: value for key, value in config.variants.items()}
        file_grid = {
            key: (values, Origin(str(path), f"grid.{key}", locate(f"grid.{key}"), grid=True))
            for key, values in config.grid.items()
        }
        for key, variant in named.items():
            _origin_items(variant.set, Origin(str(path), f"variants.{key}.set", locate(f"variants.{key}.set")), origins)
        info = config.sweep
    else:
        config, info, recipe_path, file_sets, named, file_grid = None, None, path, [], {}, {}
        name = f"{path.stem}-sweep"  # not runs/<recipe name>, the recipe's own run folder
    if not recipe_path.is_file():
        where = f"{path}: sweep.recipe" if config is not None else str(path)
        raise InparsxError(f"{where}: {recipe_path}: no such recipe file")
    command_grid = dict(parse_grid(item) for item in grid or [])
    for key, values in command_grid.items():
        file_grid[key] = (values, Origin("--grid", key, grid=True))
    cli_sets = _origin_items(list(sets or []), Origin("--set", ""), origins)
    for item in cli_sets:
        parse_set(item)
    chosen = parse_seeds(seeds) if seeds is not None else (info.seeds if info and info.seeds else None)
    variants = expand(
        named,
        {key: values for key, (values, _) in file_grid.items()},
        origins,
        {key: origin for key, (_, origin) in file_grid.items()},
    )
    sweep_dir = Path(sweep_dir) if sweep_dir is not None else Path("runs") / name
    sweep = Sweep(
        name=name,
        source=str(path),
        recipe_path=recipe_path,
        sets=[*file_sets, *cli_sets],
        seeds=chosen or [],
        variants=variants,
        columns=dict(config.columns) if config else {},
        extra_rows=[],
        compares=[],
        sweep_dir=sweep_dir,
        store=Path(store) if store is not None else sweep_dir / "store",
        metric=info.metric if info else None,
        curve=info.curve if info else None,
        description=info.description if info else "",
        origins=origins,
    )
    for item in sweep.sets:
        if parse_set(item)[0] == SEED_KEY.split("."):
            raise error_at(
                origins[item], f"{item}: the seed of each run is the sweep's: give seeds (--seeds 1,2,3) instead"
            )
    base = _validate_base(sweep, registry)
    sweep.seeds = sweep.seeds or [base.info.seed]
    from inparsx.sweep.layout import apply_layout, check_row_ref

    if config is not None:
        apply_layout(sweep, config, path, text)
    if baseline is not None:
        check_row_ref(sweep, baseline, Origin("--baseline", ""))
        sweep.compares.append(Compare(f"against {baseline}", baseline))
    elif not sweep.compares:
        default = info.baseline if info and info.baseline else None
        if default is not None:
            check_row_ref(sweep, default, Origin(str(path), "sweep.baseline", _Locator(text)("sweep.baseline")))
        if default is not None or len(sweep.variants) > 1:
            target = default or sweep.variants[0].id
            sweep.compares.append(Compare(f"against {target}", target))
    validate_runs(sweep, registry)
    return sweep


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(path, "", f"cannot read ({exc.strerror})") from None


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        raise RecipeError(path, "", f"invalid TOML: {exc.msg}", getattr(exc, "lineno", None)) from None


def _validate_file(path: Path, text: str, data: dict[str, Any]) -> SweepFile:
    """The sweep file validated; every problem is one line with file, line and dotted key."""
    locate = _Locator(text)
    errors: list[RecipeError] = []
    try:
        config = SweepFile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"])
            if err["type"] == "extra_forbidden":
                model = _model_at(err["loc"])
                reason = _unknown("key", str(err["loc"][-1]), list(model.model_fields))
            elif err["type"] == "missing":
                reason = "required key is missing"
            else:
                reason = f"{err['msg'].removeprefix('Value error, ')} (got {err.get('input')!r})"
            line = (
                array_line(text, str(err["loc"][0]), err["loc"][1])
                if len(err["loc"]) > 1 and isinstance(err["loc"][1], int)
                else locate(_table_key(err["loc"]))
            )
            errors.append(RecipeError(path, key, reason, line))
        raise_all(errors)
    for name in config.variants:  # type: ignore[possibly-undefined]
        if not NAME.match(name):
            errors.append(
                RecipeError(
                    path,
                    f"variants.{name}",
                    "a variant's name is its folder's: letters, digits, "
                    "'.', '_' and '-', starting with a letter or digit",
                    locate(f"variants.{name}".replace(" ", "")),
                )
            )
    for key, values in config.grid.items():
        if not values:
            errors.append(RecipeError(path, f"grid.{key}", "no values: give at least one", locate(f"grid.{key}")))
        elif len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            errors.append(RecipeError(path, f"grid.{key}", f"values repeat: {values}", locate(f"grid.{key}")))
    raise_all(errors)
    return config


def _model_at(loc: tuple) -> type[Options]:
    """The options model a validation error's location points into."""
    models: dict[str, type[Options]] = {
        "sweep": SweepInfo,
        "variants": VariantConfig,
        "rows": RowConfig,
        "compare": CompareConfig,
    }
    return models.get(str(loc[0]), SweepFile) if len(loc) > 1 else SweepFile


def _table_key(loc: tuple) -> str:
    """A validation error's location as the dotted key the locator knows (list indices dropped)."""
    return ".".join(str(part) for part in loc if not isinstance(part, int))


def raise_all(errors: list[RecipeError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise RecipeErrors(errors)


def error_at(origin: Origin, reason: str) -> RecipeError:
    """A one-line error at ``origin`` (file, line and key)."""
    return RecipeError(origin.file, origin.key, reason, origin.line)


def _origin_items(items: list[str], origin: Origin, origins: dict[str, Origin]) -> list[str]:
    for item in items:
        origins.setdefault(item, origin)
        try:
            parse_set(item)
        except RecipeError as exc:
            raise RecipeError(origin.file, origin.key or item, f"{item}: {exc.reason}", origin.line) from None
    return items


def expand(
    named: dict[str, VariantConfig],
    grid: dict[str, list[Any]],
    origins: dict[str, Origin],
    grid_origins: dict[str, Origin] | None = None,
) -> list[Variant]:
    """Every variant: each named variant (one unnamed variant when there are none) crossed with every combination
    of the grid, in order (the first grid key varies slowest). Folder names are unique.

    Records, in ``origins``, where each grid item comes from (``grid_origins``: by key).
    """
    bases = list(named.items()) or [("", VariantConfig())]
    combos = list(itertools.product(*grid.values())) if grid else [()]
    variants: list[Variant] = []
    folders: set[str] = set()
    for (name, config), combo in itertools.product(bases, combos):
        assigned = dict(zip(grid, combo))
        grid_sets = [f"{key}={toml_literal(value)}" for key, value in assigned.items()]
        for key, item in zip(assigned, grid_sets):
            origins.setdefault(item, (grid_origins or {}).get(key, Origin("--grid", key, grid=True)))
        parts = [f"{key}={display(value)}" for key, value in assigned.items()]
        ident = ",".join([name, *parts] if name else parts) or "base"
        label = ", ".join([config.label or name, *parts] if name else parts) or "base"
        variants.append(
            Variant(name, assigned, [*config.set, *grid_sets], ident, label, _folder(ident, folders), config.x)
        )
    return variants


def _folder(ident: str, taken: set[str]) -> str:
    """A folder name for ``ident``: unsafe characters replaced, long names shortened, collisions numbered."""
    import hashlib

    name = re.sub(r"[^A-Za-z0-9._=+-]+", "_", ident.replace(",", "+")).strip("._") or "variant"
    if len(name) > 80:
        name = name[:70] + "-" + hashlib.sha256(ident.encode()).hexdigest()[:8]
    base, n = name, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _validate_base(sweep: Sweep, registry: Registry | None) -> Recipe:
    """The base recipe with the sweep's common items (its own errors are the recipe file's)."""
    try:
        base = load_recipe(sweep.recipe_path, sweep.sets, registry or get_registry())
    except RecipeErrors as exc:
        probe = SweepRun(Variant("", {}, [], "base", "base", "base"), 0, sweep.sweep_dir, sweep.sets)
        raise RecipeErrors([sweep._blame(error, probe) for error in exc.errors]) from None
    if "evaluate" not in base.stages:
        raise InparsxError(
            f"{sweep.recipe_path}: a sweep's table is made of the evaluate stage's metrics: add "
            "[evaluate] to the recipe"
        )
    return base


def validate_runs(sweep: Sweep, registry: Registry | None = None) -> None:
    """Validate the recipe of every run (each distinct problem once).

    Raises:
        RecipeErrors: the problems, each pointed at the item that caused it.
    """
    registry = registry or get_registry()
    problems: dict[str, RecipeError] = {}
    for run in sweep.runs():
        try:
            sweep.recipe(run, registry)
        except RecipeErrors as exc:
            problems.update((str(error), error) for error in exc.errors)
        except RecipeError as exc:
            problems[str(exc)] = exc
    raise_all(list(problems.values()))
