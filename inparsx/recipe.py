"""Recipes: declarative TOML runs validated by pydantic before anything heavy loads.

A recipe has a ``[recipe]`` table (name, seed), a ``[dataset]`` table and one table per pipeline stage. A
stage table names its plugin with ``use``; every other key belongs to the stage's own options model, when it has
one (:data:`STAGE_OPTIONS`, e.g. ``[rerank]``'s ``depth``), or else to that plugin's ``Options`` model.
``filter`` takes a list of filters: a key at its top level goes to every listed filter that declares it,
and a sub-table ``[filter.<name>]`` to that filter only. Precedence: ``--set`` > file > defaults
(as in lm-evaluation-harness and confection).
"""

from __future__ import annotations

import difflib
import pkgutil
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli
from pydantic import Field, ValidationError, ValidationInfo, field_validator

from inparsx.errors import InparsxError, PluginError, RecipeError
from inparsx.plugins import Options, Registry, get_registry
from inparsx.specs import SPEC_ERROR, RecipeDeprecationWarning
from inparsx.stages import STAGE_SPECS

STAGES: dict[str, str] = {spec.name: spec.kind.name for spec in STAGE_SPECS}
"""The pipeline's canonical order: stage name -> the component kind that implements it (``estimate``'s
component is the retriever of its held-out synthetic queries). Derived, as the tables below, from
:data:`inparsx.stages.STAGE_SPECS`."""

MULTI_USE_STAGES = {spec.name for spec in STAGE_SPECS if spec.multi_use}
DEFAULT_USE = {spec.name: spec.default_use for spec in STAGE_SPECS if spec.default_use}

STAGE_OPTIONS: dict[str, str] = {spec.name: spec.options for spec in STAGE_SPECS if spec.options}
"""Stage name -> ``module:class`` of the options the stage itself reads (not its component), imported on use.
The keys of such a stage's table are routed: the stage's own fields go to this model, the others to the
component's ``Options`` (a component that declares a key of its stage's own options is refused when it
registers, :func:`inparsx.stages.shared_option_keys`)."""


def stage_options_model(stage: str) -> type[Options] | None:
    """The options model of ``stage`` itself (see :data:`STAGE_OPTIONS`), or ``None`` when it has none."""
    return pkgutil.resolve_name(STAGE_OPTIONS[stage]) if stage in STAGE_OPTIONS else None


class RecipeInfo(Options):
    """The ``[recipe]`` table. ``seed``: the seed of every stage that does not pin its own (see
    :class:`StageKeys`)."""

    name: str
    seed: int = 1
    description: str = ""


class StageKeys(Options):
    """Keys every stage table takes, besides ``use``.

    ``seed``: the stage's own seed, in place of ``[recipe] seed`` for this stage: its components draw with it
    (``ComponentContext.seed``: the generate stage's document sample, few-shot draws, negatives, training) and
    the stage's fingerprint holds it instead of the recipe's. A stage that pins its seed is computed once for
    runs that differ only in the recipe seed, e.g. one expensive generation shared by training runs of three
    seeds (``inparsx sweep --seeds 1,2,3`` with ``generate.seed = 1``). Pinning the recipe's own value changes
    nothing, not even the fingerprint. Later stages follow a changed earlier stage through what they read
    (its outputs' contents enter their cache keys).
    """

    seed: int | None = None


class DatasetConfig(Options):
    """The ``[dataset]`` table.

    ``name``: ``beir:<name>``, ``irds:<id>``, a BEIR folder path, or a collection of documents without labels:
    a BEIR folder holding ``corpus.jsonl`` alone, a ``.jsonl``/``.csv``/``.tsv`` file of documents (id, text,
    optional title; ``docs.csv?id=pmid&text=abstract`` names the columns), ``hf:<hub name, folder or data
    file>`` (a Hugging Face dataset) or an ir_datasets id without qrels. ``eval_split``: the split whose
    queries are retrieved, reranked and evaluated (a collection without labels has none: those steps say so
    in one line, and ``[estimate]`` gives a label-free estimate). ``eval_queries``: only this many of them, drawn
    with ``eval_queries_seed`` (default 1; :class:`~inparsx.datasets.base.SampledSplit`), for quick choices of
    settings on the train split; ``None``: all. The sample's seed is not the recipe's, so runs of several seeds
    are evaluated on the same queries; a smaller sample is part of a larger one with the same seed.
    """

    name: str
    eval_split: str = "test"
    eval_queries: int | None = Field(None, ge=1)
    eval_queries_seed: int | None = None

    @property
    def sample_seed(self) -> int:
        """The seed of the ``eval_queries`` sample: ``eval_queries_seed``, default 1."""
        return 1 if self.eval_queries_seed is None else self.eval_queries_seed

    @field_validator("eval_queries_seed")
    @classmethod
    def _seed_needs_a_sample(cls, seed: int | None, info: ValidationInfo) -> int | None:
        """Refuse a given ``eval_queries_seed`` without ``eval_queries``: it would draw nothing."""
        if seed is not None and info.data.get("eval_queries") is None:
            raise ValueError(
                "eval_queries_seed draws the sample of eval_queries, which is not set: "
                "set eval_queries = N, or remove eval_queries_seed"
            )
        return seed


@dataclass
class StageConfig:
    """One stage: the components it uses, in order, each with its validated options, and the stage's own
    validated options (``settings``; ``None`` for a stage without a model in :data:`STAGE_OPTIONS`)."""

    stage: str
    components: list[tuple[str, Options]]
    settings: Options | None = None
    seed: int | None = None
    """The stage's own seed (:class:`StageKeys`), or ``None``: the recipe's."""

    @property
    def use(self) -> list[str]:
        return [name for name, _ in self.components]

    def filled(self) -> dict[str, Any]:
        """The stage's table with every default written in, as :meth:`Recipe.filled` writes it (``use``, a
        pinned ``seed``, the stage's own options and the component's, or ``[filter.<name>]`` sub-tables)."""
        pinned = {"seed": self.seed} if self.seed is not None else {}
        if self.stage in MULTI_USE_STAGES:
            return {"use": self.use, **pinned, **{n: _dump(o) for n, o in self.components}}
        name, options = self.components[0]
        own = _dump(self.settings) if self.settings is not None else {}
        return {"use": name, **pinned, **own, **_dump(options)}


@dataclass
class Recipe:
    """A validated recipe. ``stages`` keeps the canonical pipeline order. ``registry``: the components it
    was validated with, from which the runner builds component specs (``ComponentContext.registry``);
    ``None``: the process-wide registry."""

    info: RecipeInfo
    dataset: DatasetConfig
    stages: dict[str, StageConfig]
    source: str = "<recipe>"
    raw: dict[str, Any] = field(default_factory=dict)
    registry: Registry | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.info.name

    def stage_seed(self, stage: str) -> int:
        """The seed of ``stage``: its own ``seed`` key when set (:class:`StageKeys`), else ``[recipe] seed``."""
        config = self.stages.get(stage)
        return config.seed if config is not None and config.seed is not None else self.info.seed

    def filled(self) -> dict[str, Any]:
        """The recipe with every default written in, as a TOML-ready dict (``None`` values left out)."""
        out: dict[str, Any] = {"recipe": _dump(self.info), "dataset": _dump(self.dataset)}
        for stage, config in self.stages.items():
            out[stage] = config.filled()
        return out

    def to_toml(self) -> str:
        """The filled recipe as TOML text."""
        import tomli_w

        return tomli_w.dumps(self.filled())


def _dump(model: Options) -> dict[str, Any]:
    return {k: v for k, v in model.model_dump(mode="json").items() if v is not None}


class RecipeErrors(InparsxError):
    """Several recipe problems, one line each."""

    def __init__(self, errors: list[RecipeError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def load_recipe(path: str | Path, overrides: list[str] | None = None, registry: Registry | None = None) -> Recipe:
    """Read, override and validate a recipe file.

    Args:
        path: the TOML file.
        overrides: ``dotted.key=value`` strings (``--set``); values are parsed as TOML literals, else strings.
        registry: components to validate against (default: the entry-point registry).

    Raises:
        RecipeError: unreadable, not UTF-8 (a UTF-8 byte-order mark is accepted) or invalid TOML, or a bad
            ``--set``.
        RecipeErrors: every unknown key, wrong type and unknown plugin, each with file, line and dotted key.
    """
    path = Path(path)
    try:
        data_bytes = path.read_bytes()
    except OSError as exc:
        raise RecipeError(path, "", f"cannot read recipe ({exc.strerror})") from None
    text = recipe_text(path, data_bytes)
    try:
        data = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        raise RecipeError(path, "", f"invalid TOML: {exc.msg}", getattr(exc, "lineno", None)) from None
    for override in overrides or []:
        apply_override(data, override)
    return validate_recipe(data, str(path), text, registry or get_registry())


def recipe_text(path: Path, data: bytes) -> str:
    """A recipe file's bytes as text: UTF-8, as TOML requires; a UTF-8 byte-order mark (some Windows editors
    write one) is skipped.

    Raises:
        RecipeError: bytes that are not UTF-8 (a gzip file, UTF-16, Latin-1...), with the line and what to do.
    """
    from inparsx.io import not_utf8

    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RecipeError(
            path,
            "",
            f"a recipe must be UTF-8 text (TOML): {not_utf8(data, exc)}",
            None if data.startswith((b"\x1f\x8b", b"\xff\xfe", b"\xfe\xff")) else line,
        ) from None


def parse_set(item: str) -> tuple[list[str], Any]:
    """One ``--set`` item, ``dotted.key=value`` -> (the key's parts, the value): the value is parsed as a TOML
    literal (``3``, ``0.5``, ``true``, ``"a"``, ``[1, 2]``, ``{k = 1}``), else kept as a string.

    The one parser of ``--set`` items, for ``inparsx run``/``validate`` and every one-off stage command.

    Raises:
        RecipeError: no ``=``, or an empty key or key part; the message names the item.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part.strip() for part in key.split(".")):
        raise RecipeError("--set", item, "expected dotted.key=value, e.g. retrieve.k1=0.9")
    try:
        value = tomli.loads(f"v = {raw.strip()}")["v"]
    except tomli.TOMLDecodeError:
        value = raw.strip()
    return [part.strip() for part in key.split(".")], value


def apply_override(data: dict[str, Any], override: str, stage: str | None = None) -> None:
    """Apply one ``--set`` item (:func:`parse_set`) to recipe data in place.

    ``--set filter.<key>=v`` goes to every listed filter that declares ``<key>``: it replaces that key in the
    ``[filter.<name>]`` sub-tables too, so an override always wins over the file.

    Args:
        data: the parsed recipe (a dict of tables).
        override: ``dotted.key=value``.
        stage: for a one-off stage command: keys are relative to ``[stage]`` (a leading ``<stage>.`` is
            accepted, so a recipe's ``--set`` works as it is).

    Raises:
        RecipeError: a malformed item, a key path through a non-table value, or (with ``stage``) a key of
            another stage; the message names the item.
    """
    parts, value = parse_set(override)
    if stage is not None:
        if parts[0] == stage and len(parts) > 1:
            parts = parts[1:]
        elif parts[0] in STAGES and len(parts) > 1:
            raise RecipeError(
                "--set",
                override,
                f"a key of [{parts[0]}]; this command runs only [{stage}]: give key=value (or {stage}.key=value)",
            )
        parts = [stage, *parts]
    *parents, leaf = parts
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError("--set", override, f"{part!r} is not a table")
    if parents and parents[0] in MULTI_USE_STAGES and len(parents) == 1:
        for sub in node.values():  # --set filter.key=v overrides [filter.<name>] key too
            if isinstance(sub, dict):
                sub.pop(leaf, None)
    node[leaf] = value


def one_stage_recipe(
    stage: str,
    use: str | list[str],
    sets: list[str],
    dataset: str = "",
    seed: int = 1,
    eval_split: str = "test",
    flags: dict[str, Any] | None = None,
    refused: dict[str, str] | None = None,
    registry: Registry | None = None,
) -> Recipe:
    """The validated recipe of a one-off stage command (``inparsx generate``, ``filter``, ``train``...): one
    ``[stage]`` table built from the command's flags and ``--set`` items, validated as a recipe file is
    (``@stage`` values may name any earlier stage: the command reads its output from elsewhere).

    Args:
        stage: the pipeline stage.
        use: the plugin (a list for ``filter``).
        sets: ``--set`` items, ``key=value`` or ``<stage>.key=value`` (:func:`apply_override`).
        dataset: the ``[dataset]`` name (``""`` for a command that reads no collection, e.g. ``train``).
        seed, eval_split: the ``[recipe]`` seed and the ``[dataset]`` evaluated split.
        flags: keys the command takes as flags -> their values (``None``: not given, the default applies); a
            ``--set`` of one of them is refused.
        refused: keys that ``--set`` may not give -> what to do instead.

    Raises:
        RecipeError: a malformed ``--set`` item or one of ``flags``/``refused``; or the one problem found.
        RecipeErrors: several unknown keys, bad values, an unknown plugin (each named ``<stage>.<key>``).
    """
    given = {key: value for key, value in (flags or {}).items() if value is not None}
    data: dict[str, Any] = {
        "recipe": {"name": stage, "seed": seed},
        "dataset": {"name": dataset, "eval_split": eval_split},
        stage: {},
    }
    blocked = {key: f"give it as --{key.replace('_', '-')}" for key in ["use", *(flags or {})]} | (refused or {})
    for item in sets:
        apply_override(data, item, stage)
        found = blocked.keys() & data[stage].keys()
        if found:
            key = found.pop()
            raise RecipeError("--set", item, f"{key} is not a --set option of this command: {blocked[key]}")
    data[stage].update({"use": use, **given})
    try:
        return validate_recipe(data, f"inparsx {stage}", "", registry or get_registry(), outside_stages=True)
    except RecipeErrors as exc:
        if len(exc.errors) == 1:
            raise exc.errors[0] from None
        raise


def validate_recipe(
    data: dict[str, Any], source: str, text: str, registry: Registry, outside_stages: bool = False
) -> Recipe:
    """Validate parsed recipe data; see :func:`load_recipe`. Every options model is validated with the pydantic
    context ``{"registry": registry, "eval_split": <[dataset] eval_split>}``, so that components named inside
    options (a filter's ``reranker``, a miner's ``teacher``, PATH's inner stages) are looked up in ``registry``
    too (see :func:`inparsx.plugins.registry_from`), and options that name a split can refuse the evaluated
    one (see :func:`inparsx.plugins.eval_split_from`).

    ``outside_stages``: a ``@stage`` value may name an earlier stage that the recipe lacks (a one-off
    command reads that stage's output from elsewhere, see :func:`one_stage_recipe`).

    An old spelling that an options model still accepts gives one :class:`~inparsx.specs.RecipeDeprecationWarning`
    (a ``FutureWarning``) with the file, line and key, naming the new spelling.
    """
    locate = _Locator(text)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RecipeDeprecationWarning)
            return _validate(data, source, registry, outside_stages, locate)
    finally:
        _rewarn(caught, source, locate)


def _validate(data: dict[str, Any], source: str, registry: Registry, outside_stages: bool, locate: _Locator) -> Recipe:
    errors: list[RecipeError] = []

    def fail(key: str, reason: str) -> None:
        errors.append(RecipeError(source, key, reason, locate(key)))

    allowed = ["recipe", "dataset", *STAGES]
    for key in data:
        if key not in allowed:
            fail(key, _unknown("table", key, allowed))
    info = _model(RecipeInfo, data.get("recipe"), "recipe", fail)
    dataset = _model(DatasetConfig, data.get("dataset"), "dataset", fail)
    stages: dict[str, StageConfig] = {}
    for stage, kind in STAGES.items():
        if stage in data:
            config = _stage(stage, kind, data[stage], registry, fail, dataset.eval_split if dataset else None)
            if config is not None:
                stages[stage] = config
    _check_stage_references(stages, fail, outside_stages)
    if not errors:
        cross_stage_checks(stages, fail)
    if errors:
        raise RecipeErrors(errors)
    return Recipe(info, dataset, stages, source, data, registry)  # type: ignore[arg-type]


def _field(stages: dict[str, StageConfig], stage: str, key: str) -> Any:
    """The value of option ``key`` of a single-component stage (the stage's own options first, then its
    component's), or ``None`` when absent or undeclared."""
    if stage not in stages:
        return None
    for options in (stages[stage].settings, stages[stage].components[0][1]):
        if options is not None and key in type(options).model_fields:
            return getattr(options, key)
    return None


def cross_stage_checks(stages: dict[str, StageConfig], fail) -> None:
    """Options of two stages that contradict each other, each reported with file, line and key.

    - ``train.num_negatives`` differs from ``triples.n_negatives``: training would use fewer negatives than
      were mined, or ask for more than the triples carry.
    - ``rerank.depth`` above ``retrieve.k`` when the rerank stage reranks the retrieve run: the run holds only
      ``k`` documents per query.
    - ``rerank`` ``true_token``/``false_token`` differ from ``train``'s while ``rerank.model = "@train"``: the
      reranker would read other words than the model was trained to write.
    - ``[estimate]`` without ``[generate]`` or ``[rerank]``, or with ``k`` below ``rerank.depth``.
    """
    mined, used = _field(stages, "triples", "n_negatives"), _field(stages, "train", "num_negatives")
    if mined is not None and used is not None and mined != used:
        fail(
            "train.num_negatives",
            f"{used} but triples.n_negatives = {mined}: "
            + (
                f"only {used} of the {mined} mined negatives per query would reach training"
                if used < mined
                else f"the triples carry at most {mined} negative(s) per query"
            )
            + "; leave num_negatives out to train on every mined negative, or change n_negatives",
        )
    depth, k = _field(stages, "rerank", "depth"), _field(stages, "retrieve", "k")
    if depth is not None and k is not None and _field(stages, "rerank", "first_stage") == "retrieve" and depth > k:
        fail(
            "rerank.depth",
            f"{depth} but retrieve.k = {k}: the first-stage run holds {k} documents per query; "
            f"set depth to at most {k}, or raise retrieve.k",
        )
    if "estimate" in stages:
        _check_estimate(stages, fail)
    if _field(stages, "rerank", "model") == "@train":
        for key in ("true_token", "false_token"):
            given, trained = _field(stages, "rerank", key), _field(stages, "train", key)
            if given is not None and trained is not None and given != trained:
                fail(
                    f"rerank.{key}",
                    f"{given!r} but train.{key} = {trained!r}: the reranker would read a word the "
                    f"model was not trained to write; leave rerank.{key} out (the trained one is used)",
                )


def _check_estimate(stages: dict[str, StageConfig], fail) -> None:
    """``[estimate]`` ranks synthetic queries that ``[generate]`` writes for its held-out documents, and reranks
    them as ``[rerank]`` does; its first-stage run must be as deep as ``rerank.depth``."""
    for needed, why in (
        ("generate", "writes the held-out documents' synthetic queries"),
        ("rerank", "says how to rerank them (model, zero_shot_model, depth...)"),
    ):
        if needed not in stages:
            fail("estimate", f"needs [{needed}], which {why}: add [{needed}] to the recipe")
    depth, k = _field(stages, "rerank", "depth"), _field(stages, "estimate", "k")
    if depth is not None and k is not None and depth > k:
        fail(
            "estimate.k",
            f"{k} but rerank.depth = {depth}: the estimate reranks the top {depth} of its first-stage "
            f"run; set k to at least {depth}",
        )


def _check_stage_references(stages: dict[str, StageConfig], fail, outside_stages: bool = False) -> None:
    """Every option value ``"@<stage>"`` (e.g. ``model = "@tune"``) must name a stage of the recipe that runs
    earlier (with ``outside_stages``, any earlier stage). Only a stage table's own values are checked (nested
    tables, such as PATH's inner recipe, are not)."""
    order = list(STAGES)
    for stage, config in stages.items():
        multi = stage in MULTI_USE_STAGES
        own = [(stage, config.settings)] if config.settings is not None else []
        for name, options in [*own, *config.components]:
            for key, value in options:
                if not (isinstance(value, str) and value.startswith("@")):
                    continue
                target, where = value[1:], f"{stage}.{name}.{key}" if multi else f"{stage}.{key}"
                if target not in STAGES:
                    fail(where, f"{value}: no such stage; expected @ and one of: {', '.join(STAGES)}")
                elif order.index(target) >= order.index(stage) or target not in stages and not outside_stages:
                    fail(
                        where,
                        f"{value} is the output of stage {target!r}, but the recipe has no [{target}] "
                        f"stage before [{stage}]",
                    )


def _unknown(what: str, key: str, allowed: list[str]) -> str:
    message = f"unknown {what}; expected one of: {', '.join(allowed)}"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return message + (f"; did you mean {close[0]!r}?" if close else "")


def _model(
    cls: type[Options], table: Any, prefix: str, fail, registry: Registry | None = None, eval_split: str | None = None
) -> Options | None:
    if not isinstance(table, dict):
        fail(prefix, "missing table" if table is None else "must be a table")
        return None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RecipeDeprecationWarning)
            model = cls.model_validate(table, context={"registry": registry, "eval_split": eval_split})
    except ValidationError as exc:
        _report(exc, cls, prefix, fail)
        return None
    finally:
        for item in caught:  # an old spelling's warning, given the table's dotted key
            message = item.message
            if isinstance(message, RecipeDeprecationWarning):
                message = RecipeDeprecationWarning(f"[{prefix}] {message}", f"{prefix}.{message.key}")
            warnings.warn_explicit(message, item.category, item.filename, item.lineno)
    return model


def _rewarn(caught: list[warnings.WarningMessage], source: str, locate: _Locator) -> None:
    """Re-emit the recipe's deprecation warnings (old spellings, see :mod:`inparsx.specs`) once each, with the
    recipe's file and line; other warnings are re-emitted as they were."""
    seen: set[str] = set()
    for item in caught:
        message = item.message
        if not isinstance(message, RecipeDeprecationWarning):
            warnings.warn_explicit(message, item.category, item.filename, item.lineno)
        elif str(message) not in seen:
            seen.add(str(message))
            line = locate(message.key)
            warnings.warn(
                RecipeDeprecationWarning(
                    f"{source}:{line}: {message}" if line else f"{source}: {message}", message.key
                ),
                stacklevel=3,
            )


KEYED_ERROR = "inparsx_recipe_key"
"""The pydantic error type of a problem already worded for a recipe key (e.g. one inside a tuner's inner
stage table, :mod:`inparsx.subrun`): its message is reported as it is, at its location."""


def _report(exc: ValidationError, cls: type[Options], prefix: str, fail) -> None:
    for err in exc.errors():
        key = ".".join(str(p) for p in (prefix, *err["loc"]))
        if err["type"] == KEYED_ERROR:
            fail(key, err["msg"])
        elif err["type"] == "extra_forbidden":
            fail(key, _unknown("key", str(err["loc"][-1]), list(cls.model_fields)))
        elif err["type"] == "missing":
            fail(key, "required key is missing")
        elif err["type"] == SPEC_ERROR:
            inner = err.get("ctx", {})
            fail(".".join(p for p in (key, inner.get("key", "")) if p), str(inner.get("reason", err["msg"])))
        elif not err["loc"] and err["type"] == "value_error":
            fail(*_whole_model_error(err["msg"], cls, prefix))
        else:
            fail(key, f"{err['msg']} (got {err.get('input')!r})")


def _whole_model_error(message: str, cls: type[Options], prefix: str) -> tuple[str, str]:
    """A model validator's error (no field location) as (key, reason): when the reason starts with one of the
    model's keys (``fuse: ...``, ``teacher and teacher_model go together``), that key is where it points, and
    the reason loses the ``Value error,`` prefix and a leading ``<key>:``."""
    reason = message.removeprefix("Value error, ")
    found = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(:?)", reason)
    if found is None or found.group(1) not in cls.model_fields:
        return prefix, reason
    return f"{prefix}.{found.group(1)}", reason[found.end() :].lstrip() if found.group(2) else reason


def validate_stage(
    stage: str, table: Any, registry: Registry, eval_split: str | None = None
) -> tuple[StageConfig | None, list[tuple[str, str]]]:
    """Validate one stage table as a recipe's ``[stage]`` is validated (``use``, ``seed``, the stage's own
    options and its components'), e.g. a tuner's inner stage (:mod:`inparsx.subrun`).

    Returns:
        The stage's config (``None`` when invalid) and its problems as ``(dotted key, reason)``, each key
        starting with ``stage`` (``train.max_steps``).
    """
    problems: list[tuple[str, str]] = []
    config = _stage(
        stage, STAGES[stage], table, registry, lambda key, reason: problems.append((key, reason)), eval_split
    )
    return (config if not problems else None), problems


def check_stages(stages: dict[str, StageConfig], outside_stages: bool = False) -> list[tuple[str, str]]:
    """What :func:`validate_recipe` checks across validated stages: ``@stage`` references that name an earlier
    stage, and the options of two stages that contradict each other (:func:`cross_stage_checks`), as
    ``(dotted key, reason)``."""
    problems: list[tuple[str, str]] = []

    def fail(key: str, reason: str) -> None:
        problems.append((key, reason))

    _check_stage_references(stages, fail, outside_stages)
    if not problems:
        cross_stage_checks(stages, fail)
    return problems


def _stage(
    stage: str, kind: str, table: Any, registry: Registry, fail, eval_split: str | None = None
) -> StageConfig | None:
    if not isinstance(table, dict):
        fail(stage, "must be a table")
        return None
    table = dict(table)
    keys = _model(StageKeys, {k: table.pop(k) for k in list(table) if k in StageKeys.model_fields}, stage, fail)
    use = table.pop("use", DEFAULT_USE.get(stage))
    if use is None:
        fail(f"{stage}.use", f"required: the {kind[:-1]} to use; available: {', '.join(registry.names(kind))}")
        return None
    names = use if isinstance(use, list) else [use]
    if (
        isinstance(use, list)
        and stage not in MULTI_USE_STAGES
        or not all(isinstance(n, str) for n in names)
        or not names
    ):
        fail(f"{stage}.use", "must be a plugin name" + (" or a list of names" if stage in MULTI_USE_STAGES else ""))
        return None
    classes = {}
    for name in names:
        try:
            classes[name] = registry.get(kind, name)
        except PluginError as exc:
            fail(f"{stage}.use", str(exc))
    if len(classes) != len(names):
        return None
    if len(names) == 1 and stage not in MULTI_USE_STAGES:
        config = _single_stage(stage, names[0], classes[names[0]], table, fail, registry, eval_split)
    else:
        config = _multi_stage(stage, names, classes, table, fail, registry, eval_split)
    if config is None or keys is None:
        return None
    config.seed = keys.seed
    return config


def _single_stage(
    stage: str, name: str, cls: type, table: dict, fail, registry: Registry, eval_split: str | None = None
) -> StageConfig | None:
    """One component's stage: the keys of the stage's own options model (if any) go there, the rest to the
    component's ``Options``; a key that neither declares is reported once, naming both sets of keys."""
    model = stage_options_model(stage)
    if model is None:
        options = _model(cls.Options, table, stage, fail, registry, eval_split)
        return StageConfig(stage, [(name, options)]) if options is not None else None
    own = {key: value for key, value in table.items() if key in model.model_fields}
    rest = {key: value for key, value in table.items() if key not in own}
    for key in [k for k in rest if k not in cls.Options.model_fields]:
        fail(
            f"{stage}.{key}",
            _unknown(f"key of [{stage}] or of {name!r}", key, [*model.model_fields, *cls.Options.model_fields]),
        )
        del rest[key]
    settings = _model(model, own, stage, fail, registry, eval_split)
    options = _model(cls.Options, rest, stage, fail, registry, eval_split)
    if settings is None or options is None:
        return None
    return StageConfig(stage, [(name, options)], settings)


def _multi_stage(
    stage: str,
    names: list[str],
    classes: dict[str, type],
    table: dict,
    fail,
    registry: Registry,
    eval_split: str | None = None,
) -> StageConfig | None:
    per: dict[str, dict[str, Any]] = {name: {} for name in names}
    for key, value in table.items():
        if key in per and isinstance(value, dict):
            per[key].update(value)
            continue
        takers = [n for n in names if key in (*classes[n].Options.model_fields, *classes[n].Options.legacy_keys)]
        if not takers:
            known = sorted({f for n in names for f in classes[n].Options.model_fields})
            fail(f"{stage}.{key}", _unknown(f"key for {', '.join(names)}", key, known))
        for name in takers:
            per[name].setdefault(key, value)
    components = []
    for name in names:
        options = _model(classes[name].Options, per[name], f"{stage}.{name}", fail, registry, eval_split)
        if options is None:
            return None
        components.append((name, options))
    return StageConfig(stage, components)


class _Locator:
    """Finds the 1-based line of a dotted key in TOML text (tables, sub-tables and dotted keys)."""

    _header = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")
    _key = re.compile(r"^\s*([A-Za-z0-9_.\-\"']+?)\s*=")

    def __init__(self, text: str):
        self.lines: dict[str, int] = {}
        table = ""
        for number, line in enumerate(text.splitlines(), 1):
            if match := self._header.match(line):
                table = match.group(1).replace('"', "").replace(" ", "")
                self.lines.setdefault(table, number)
            elif match := self._key.match(line):
                key = match.group(1).replace('"', "").replace("'", "")
                self.lines.setdefault(f"{table}.{key}" if table else key, number)

    def __call__(self, dotted: str) -> int | None:
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            if (line := self.lines.get(".".join(parts[:end]))) is not None:
                return line
        return None
