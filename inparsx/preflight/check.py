"""The pre-flight check of a recipe: every model it names resolved, its memory against this machine, and the
time generation would take on this CPU, without loading any weights.

The models come from the components themselves (:meth:`inparsx.plugins.Component.models`, and the rerank
stage's :meth:`~inparsx.plugins.StageOptions.models`), never from options looked up by name. A model named
``@stage`` is the output of an earlier stage: found when that stage has written it, else made by that stage
in this run, and sized like the model that stage trains or tunes (its reference marked ``output``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inparsx.artifacts import MODEL
from inparsx.cachekey import DONE_MARKER
from inparsx.errors import InparsxError
from inparsx.models import ModelRef
from inparsx.preflight.resolve import Resolution, resolve_model
from inparsx.preflight.sizes import ModelSize, human_count, model_size

if TYPE_CHECKING:
    from inparsx.datasets.base import Dataset
    from inparsx.plugins import Registry
    from inparsx.preflight.memory import Machine, Need
    from inparsx.recipe import Recipe


class PreflightError(InparsxError):
    """The pre-flight check found a model that cannot be loaded, or one that cannot fit in memory."""


@dataclass
class Use:
    """One model reference of one stage, resolved and sized."""

    stage: str
    ref: ModelRef
    resolution: Resolution
    size: ModelSize
    made_by: str = ""

    @property
    def label(self) -> str:
        return f"{self.stage}.{self.ref.option}"


@dataclass
class PreflightReport:
    """What :func:`check_recipe` found: the lines to print (one per model, then the memory verdict and the
    CPU-time estimate) and the problems (a model missing or gated, a model too large)."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    uses: list[Use] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise :class:`PreflightError` naming every problem, when there is one."""
        if self.problems:
            raise PreflightError(
                "pre-flight check failed, nothing was run: "
                + "; ".join(self.problems)
                + " (the lines above say why and what to do)"
            )


def recipe_models(
    recipe: Recipe, registry: Registry | None = None, stages: list[str] | None = None
) -> list[tuple[str, ModelRef]]:
    """Every model the recipe's components declare, as ``(stage, ref)`` in pipeline order (``stages``: only
    those); the components are built from the validated options, nothing is loaded."""
    from inparsx.plugins import get_registry
    from inparsx.recipe import STAGES

    registry = registry or get_registry()
    found: list[tuple[str, ModelRef]] = []
    for stage, config in recipe.stages.items():
        if stages is not None and stage not in stages:
            continue
        components = [registry.get(STAGES[stage], name)(options) for name, options in config.components]
        found += [(stage, ref) for ref in stage_models(components, config.settings)]
    return found


def stage_models(components: list[Any], settings: Any = None) -> list[ModelRef]:
    """The models a stage loads: each component's :meth:`~inparsx.plugins.Component.models`, then its own
    options' (:meth:`~inparsx.plugins.StageOptions.models`, e.g. the rerank stage's ``model``)."""
    from inparsx.plugins import StageOptions

    refs = [ref for component in components for ref in component.models()]
    if isinstance(settings, StageOptions):
        refs += settings.models(components)
    return [ref for ref in refs if ref.model]


def check_recipe(
    recipe: Recipe,
    run_dir: Path,
    stages: list[str] | None = None,
    dataset: Dataset | None = None,
    say: Callable[[str], None] | None = None,
    machine: Machine | None = None,
) -> PreflightReport:
    """Resolve and size every model of ``stages`` (default: all) of ``recipe``; see the module docstring.

    Args:
        recipe: a validated recipe.
        run_dir: its run directory (``@stage`` outputs already written there are found).
        stages: the stages about to run.
        dataset: the collection, for the number of documents a generator writes for (its ``num_docs`` at most).
        say: where the one line about an unreachable hub goes.
        machine: the machine to fit (default: this one, :func:`inparsx.preflight.memory.this_machine`).
    """
    report = PreflightReport()
    pairs = recipe_models(recipe, stages=stages)
    if not pairs:
        return report
    outputs = {stage: ref for stage, ref in recipe_models(recipe) if ref.output}
    report.uses = [_use(stage, ref, recipe, run_dir, outputs, say) for stage, ref in pairs]
    _model_lines(report)
    weighted = [use for use in report.uses if use.ref.weights]
    if weighted:
        from inparsx.preflight.memory import this_machine

        machine = machine or this_machine()
        _memory_lines(report, weighted, machine)
        if not machine.gpus:
            _cpu_time_lines(report, weighted, dataset)
    return report


def _use(stage: str, ref: ModelRef, recipe: Recipe, run_dir: Path, outputs: dict[str, ModelRef], say) -> Use:
    if not ref.model.startswith("@"):
        resolution = resolve_model(ref.model, ref.gguf_file, ref.revision, say)
        return Use(
            stage,
            ref,
            resolution,
            model_size(resolution.path, resolution.gguf_file, ref.model, resolution.params, resolution.config),
        )
    target = ref.model[1:]
    path = Path(run_dir) / target / MODEL
    base = outputs.get(target)
    if (Path(run_dir) / target / DONE_MARKER).is_file() and path.exists():
        return Use(
            stage,
            ref,
            Resolution("found", f"the output of [{target}], {path}", path),
            model_size(path, None, ref.model),
        )
    if target in recipe.stages:
        made = f"made by [{target}] in this run" + (f" from {base.model}" if base is not None else "")
        size = _use("", base, recipe, run_dir, outputs, None).size if base is not None else ModelSize()
        return Use(stage, ref, Resolution("found", made), size, made_by=target)
    return Use(
        stage, ref, Resolution("missing", f"{path} does not exist and the recipe has no [{target}] stage"), ModelSize()
    )


def _model_lines(report: PreflightReport) -> None:
    seen: dict[tuple[str, str], Use] = {}
    for use in report.uses:
        seen.setdefault((use.label, use.ref.model), use)
    width = max(len(label) for label, _ in seen)
    report.lines.append("models:")
    for (label, model), use in seen.items():
        status = use.resolution.status if not use.made_by else "later"
        size = f"; {use.size.describe()}" if use.ref.weights and use.size.known else ""
        report.lines.append(f"  {label:<{width}}  {model}  {status}: {use.resolution.where}{size}")
        if not use.resolution.ok:
            report.problems.append(f"{label} {model} is {use.resolution.status}")


def _memory_lines(report: PreflightReport, uses: list[Use], machine: Machine) -> None:
    from inparsx.preflight.memory import budget, need, size_text

    needs = [need(u.stage, f"{u.label} ({u.ref.role})", u.ref, u.size, machine) for u in uses]
    report.lines.append(f"memory (activations not counted), on this machine: {machine.describe()}:")
    width = max(len(n.label) for n in needs)
    for item in needs:
        report.lines.append(f"  {item.label:<{width}}  {item.describe()}")
    known = [n for n in needs if n.total is not None]
    unknown = len(needs) - len(known)
    if not known:
        report.lines.append("memory verdict: no model's size is known here")
        return
    largest = max(known, key=lambda n: n.total or 0.0)
    too_large = []
    for item in known:
        limit, where = budget(item, machine)
        if (item.total or 0.0) > limit:
            too_large.append(item)
            report.problems.append(
                f"{item.label} needs at least {size_text(item.total)}, more than {where} ({size_text(limit)})"
            )
    limit, where = budget(largest, machine)
    rest = f"; {unknown} of unknown size not counted" if unknown else ""
    if not too_large:
        report.lines.append(
            f"memory verdict: fits: the largest, {largest.label}, needs at least "
            f"{size_text(largest.total)} of {where} ({size_text(limit)}){rest}"
        )
    for item in too_large:
        limit, where = budget(item, machine)
        report.lines.append(
            f"memory verdict: does NOT fit: {item.label} needs at least {size_text(item.total)}, "
            f"more than {where} ({size_text(limit)}): {_advice(item, limit)}{rest}"
        )


def _advice(item: Need, limit: float) -> str:
    if item.extra_kind == "KV cache" and (item.weights or 0.0) <= limit:
        return (
            'lower batch_size or max_new_tokens, load it in 4 bits (quantization = "nf4"), spread it over GPUs '
            '(device_map = "auto"), or use a GPU with more memory'
        )
    if item.extra_kind == "gradients and AdamW states":
        return "train a smaller model, lower the precision (bf16), or use a GPU with more memory"
    return 'load it in 4 or 8 bits (quantization = "nf4" or "int8"), or use a machine with more memory'


def _cpu_time_lines(report: PreflightReport, uses: list[Use], dataset: Dataset | None) -> None:
    """The generation-time estimate of each generator on this CPU (no GPU here): ``2 x parameters`` FLOPs per
    token (prompt and generated) at this CPU's measured matmul rate in the model's compute dtype."""
    from inparsx.preflight.cpu import matmul_rate
    from inparsx.preflight.memory import compute_dtype

    generators = [u for u in uses if u.ref.generation is not None and u.size.known]
    corpus = dataset.docs_count_hint() if dataset is not None else None
    rates: dict[str, dict] = {}
    for use in generators:
        gen, params = use.ref.generation, use.size.params or 0
        dtype = "bf16" if compute_dtype(use.ref, False) == "bf16" else "fp32"
        rate = rates.setdefault(dtype, matmul_rate(dtype))
        docs = min(gen.documents, corpus) if corpus else gen.documents
        per_doc = gen.prompt_tokens - gen.shared_tokens + gen.new_tokens
        tokens = docs * gen.sequences * per_doc + gen.shared_tokens
        seconds = 2.0 * params * tokens / (rate["gflops"] * 1e9)
        shared = f" (~{gen.shared_tokens} of them shared, computed once)" if gen.shared_tokens else ""
        report.lines.append(
            f"generation on this CPU: {use.label} ({human_count(params)} parameters, {dtype}), {docs:,} "
            f"document{'s' * (docs != 1)} x {gen.sequences} quer{'ies' if gen.sequences != 1 else 'y'} of "
            f"~{gen.prompt_tokens} prompt tokens{shared} + {gen.new_tokens} new: at least {_duration(seconds)} "
            f"(2 x parameters FLOPs a token at {rate['gflops']:g} GFLOP/s, this CPU's {dtype} matmul rate on "
            f"{rate['threads']} threads, measured now; decoding is slower where memory bandwidth limits it)"
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def check_stage_models(
    stage: str, refs: list[ModelRef], resolve_output: Callable[[str], str], say: Callable[[str], None] | None = None
) -> None:
    """Before a stage clears its folder: every model it will load resolves (``@stage`` through
    ``resolve_output``, which raises when that output is missing).

    Raises:
        PreflightError: a model that is missing or gated (each named, with the reason).
        InparsxError: an ``@stage`` output that does not exist.
    """
    problems = []
    for ref in refs:
        if ref.model.startswith("@"):
            resolve_output(ref.model)
            continue
        resolution = resolve_model(ref.model, ref.gguf_file, ref.revision, say)
        if not resolution.ok:
            problems.append(f"{stage}.{ref.option} = {ref.model!r} is {resolution.status} ({resolution.where})")
    if problems:
        raise PreflightError(f"stage {stage!r} cannot start, its folder is kept as it was: " + "; ".join(problems))
