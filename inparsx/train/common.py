"""What every trainer shares: options, precision, seeding, checkpoints and resumption, progress, saving.

The trainers are built on Hugging Face's ``Trainer`` (directly for monoT5, through sentence-transformers'
``CrossEncoderTrainer``/``SentenceTransformerTrainer`` for the encoders), so mixed precision, gradient
accumulation, gradient checkpointing, checkpointing and multi-GPU data parallelism (``accelerate launch`` /
``torchrun``) all come from that library. Heavy imports stay inside functions.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, Field, model_validator

from inparsx.devices import process_device
from inparsx.errors import InparsxError
from inparsx.models import resolve_model_name
from inparsx.plugins import Options
from inparsx.precision import AUTO_DESCRIPTION
from inparsx.progress import console, make_progress
from inparsx.train.base import Trainer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from inparsx.context import ComponentContext
    from inparsx.models import ModelRef
    from inparsx.triples.base import Triple

CHECKPOINTS = "checkpoints"
"""Sub-folder of the output folder where resumable checkpoints (``checkpoint-<step>``) are written."""


def model_field(default: Any = ...) -> Any:
    """The ``base_model`` field (also accepted as ``model``), with a per-trainer default."""
    return Field(default, validation_alias=AliasChoices("base_model", "model"))


class TrainerOptions(Options):
    """Options every trainer has (names follow Hugging Face ``TrainingArguments`` where one exists).

    ``base_model`` (alias ``model``): hub id, local folder or ``@stage`` (e.g. ``@tune``). Training length is
    ``max_steps`` optimiser steps when set, else ``epochs`` passes over the triples (default 1); giving both is
    refused, and ``epochs`` alone unsets a trainer's default ``max_steps`` (monoT5's 156). The effective batch is
    ``batch_size x gradient_accumulation_steps x number of processes``. ``precision``: ``auto`` follows the
    one rule of ``inparsx.precision`` that inference follows too: bf16 where the device computes it natively
    (a CUDA GPU of compute capability 8.0 or later, a CPU with AVX512-BF16 or AMX), fp16 on an older CUDA GPU,
    fp32 elsewhere (bf16 and fp16 are mixed precision over fp32 weights). ``save_steps``: a resumable
    checkpoint every so many steps (0: none); a crashed run resumes from the last complete one.
    ``seed``: ``None`` takes the stage's seed (the recipe's); in a recipe's ``[train]`` table, ``seed`` is the
    stage's own (``StageKeys``), which pins the fingerprint too, and this option is for trainers built inside
    other options (the consistency filter's). ``max_triples``: use only the first triples of the file.
    ``num_negatives``: hard negatives used per query (from each triple's ``neg_texts``); ``None`` (default):
    every negative the triples carry (the fewest any triple has, when they differ), so the triples stage's
    ``n_negatives`` decides. ``lr_scheduler``: transformers' schedule; ``constant`` has no warm-up, so
    ``warmup_ratio`` defaults to 0 with it and a non-zero one is refused (use ``constant_with_warmup``).
    ``train_layers``: train only the top ``train_layers`` transformer layers (plus heads and final norms);
    every embedding table outside the layers (T5's shared ``shared.weight`` and the output head tied to it
    included) and the lower layers stay frozen (``None``: train everything). On a 2-core CPU, training the top 2 of
    MiniLM's 6 layers in bf16 made a step 2.3x faster than full fp32 fine-tuning (``bench/train_speed.py``),
    and it keeps the model close to its starting point.
    """

    base_model: str = model_field()
    max_steps: int | None = Field(None, ge=1)
    epochs: float | None = Field(None, gt=0)
    batch_size: int = Field(16, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    learning_rate: float = Field(2e-5, gt=0)
    lr_scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine"] = "linear"
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    max_length: int = Field(256, ge=8)
    num_negatives: int | None = Field(None, ge=0)
    max_triples: int | None = Field(None, ge=1)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description=AUTO_DESCRIPTION)
    gradient_checkpointing: bool = False
    train_layers: int | None = Field(None, ge=0)
    save_steps: int = Field(500, ge=0)
    keep_checkpoints: bool = False
    logging_steps: int = Field(10, ge=1)
    seed: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_warmup_when_constant(cls, data: Any) -> Any:
        """``warmup_ratio`` defaults to 0 with ``lr_scheduler = "constant"`` (which has no warm-up); ``epochs``
        without ``max_steps`` unsets the default ``max_steps``."""
        if isinstance(data, dict) and "warmup_ratio" not in data:
            if data.get("lr_scheduler", cls.model_fields["lr_scheduler"].default) == "constant":
                data = {**data, "warmup_ratio": 0.0}
        if isinstance(data, dict) and data.get("epochs") is not None and "max_steps" not in data:
            data = {**data, "max_steps": None}  # epochs asked for: a default max_steps would override them
        return data

    @model_validator(mode="after")
    def _consistent(self) -> TrainerOptions:
        if self.epochs is not None and self.max_steps is not None:
            raise ValueError(
                f"epochs = {self.epochs:g} would be ignored: max_steps = {self.max_steps} sets the "
                "training length; give one of them"
            )
        if self.lr_scheduler == "constant" and self.warmup_ratio > 0:
            raise ValueError(
                f"warmup_ratio = {self.warmup_ratio:g} would be ignored: transformers' 'constant' "
                "schedule has no warm-up; use lr_scheduler = 'constant_with_warmup' or warmup_ratio = 0"
            )
        return self


def resolve_base_model(value: str, ctx: ComponentContext | None) -> str:
    """A model option: ``@stage`` -> that stage's output folder (needs ``ctx``); a hub id whose weights ship
    in an installed package (:data:`inparsx.models.PACKAGED_MODELS`) -> that package's folder; anything else
    unchanged.

    Raises:
        InparsxError: ``@stage`` outside a recipe run, or the stage has no output yet.
    """
    if value.startswith("@"):
        if ctx is None:
            raise InparsxError(
                f"base_model {value!r} refers to a recipe stage; outside `inparsx run` give a hub id or a local folder"
            )
        return ctx.resolve_model(value)
    return resolve_model_name(value)


def resolve_seed(options: TrainerOptions, ctx: ComponentContext | None) -> int:
    """The option's seed, else the recipe's, else 1."""
    if options.seed is not None:
        return options.seed
    return ctx.seed if ctx is not None else 1


def training_device() -> Any:
    """The device Hugging Face's ``Trainer`` trains on here (a ``torch.device``): this process's device,
    :func:`inparsx.devices.process_device` (its GPU, else ``mps``, else ``cpu``); :func:`precision_flags` sets
    ``use_cpu`` from it."""
    return process_device()


def resolve_training_precision(precision: str, key: str = "train.precision") -> str:
    """A ``precision`` option resolved on :func:`training_device` by the one ``auto`` rule
    (:data:`inparsx.precision.AUTO_RULE`): ``bf16``, ``fp16`` or ``fp32``.

    Raises:
        InparsxError: fp16 without a CUDA GPU (PyTorch's CPU autocast does not do fp16 training).
    """
    from inparsx.precision import resolve_precision

    return resolve_precision(precision, training_device(), key)


def precision_flags(precision: str) -> dict[str, bool]:
    """``TrainingArguments`` flags (``bf16``, ``fp16``, ``use_cpu``) for a ``precision`` option, ``auto``
    resolved by :func:`resolve_training_precision` (bf16 and fp16 are mixed precision: autocast over fp32
    master weights).

    Raises:
        InparsxError: fp16 without a CUDA GPU.
    """
    resolved = resolve_training_precision(precision)
    return {"bf16": resolved == "bf16", "fp16": resolved == "fp16", "use_cpu": training_device().type == "cpu"}


def training_arguments(options: TrainerOptions, checkpoints: Path, seed: int) -> dict[str, Any]:
    """Keyword arguments of Hugging Face ``TrainingArguments`` (and its sentence-transformers subclasses)."""
    return dict(
        output_dir=str(checkpoints),
        seed=seed,
        data_seed=seed,
        max_steps=options.max_steps or -1,
        num_train_epochs=options.epochs or 1.0,
        per_device_train_batch_size=options.batch_size,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        learning_rate=options.learning_rate,
        lr_scheduler_type=options.lr_scheduler,
        warmup_steps=options.warmup_ratio,
        weight_decay=options.weight_decay,
        **checkpointing_flag(options.gradient_checkpointing),
        save_strategy="steps" if options.save_steps else "no",
        save_steps=options.save_steps or 500,
        save_total_limit=2,
        logging_steps=options.logging_steps,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        **precision_flags(options.precision),
    )


def checkpointing_flag(enabled: bool) -> dict[str, bool]:
    """Activation (gradient) checkpointing as the installed ``TrainingArguments`` names it: transformers 5.20
    renamed ``gradient_checkpointing`` to ``activation_checkpointing``; both spellings are in the supported
    range (see ``constraints.txt``)."""
    import inspect

    from transformers import TrainingArguments

    names = inspect.signature(TrainingArguments.__init__).parameters
    return {"activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": enabled}


LAYER_STACKS = ("layer", "layers", "block", "h")
"""Names of the ``nn.ModuleList`` that hold a transformer's layers (BERT ``encoder.layer``, T5 ``block``,
GPT-2 ``h``, Llama ``layers``)."""


def freeze_lower_layers(model, train_layers: int | None) -> tuple[int, int]:
    """Freeze the embeddings and all but the top ``train_layers`` layers of every layer stack of ``model``.

    Embeddings are the parameters named ``*embed*`` and every ``nn.Embedding`` outside the layer stacks (T5's
    ``shared``, which also is its tied output head); embeddings inside a layer (T5's relative attention bias)
    follow their layer.

    Returns ``(trainable, total)`` parameter counts. ``None`` leaves the model untouched.

    Raises:
        InparsxError: ``train_layers`` is set but ``model`` has no recognisable layer stack.
    """
    import torch

    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    if train_layers is None:
        return total, total
    stacks = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList) and name.rsplit(".", 1)[-1] in LAYER_STACKS
    ]
    stacks = [
        (name, module)
        for name, module in stacks  # not T5's `block.<i>.layer` (the sub-layers of a block)
        if not any(name.startswith(f"{outer}.") for outer, _ in stacks)
    ]
    if not stacks:
        raise InparsxError("train.train_layers: the model has no layer stack (encoder.layer, block, layers) to freeze")
    frozen = {f"{name}.{i}." for name, stack in stacks for i in range(max(len(stack) - train_layers, 0))}
    layers = tuple(f"{name}." for name, _ in stacks)
    tables = {
        id(p)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Embedding) and not name.startswith(layers)
        for p in module.parameters()
    }  # T5's `shared`, tied to lm_head
    for name, param in params.items():
        if "embed" in name or id(param) in tables or any(name.startswith(prefix) for prefix in frozen):
            param.requires_grad_(False)
    return sum(p.numel() for p in params.values() if p.requires_grad), total


def last_checkpoint(checkpoints: Path) -> str | None:
    """The newest *complete* ``checkpoint-<step>`` folder (one whose ``trainer_state.json``, written last by
    Hugging Face's ``Trainer``, exists), or ``None``: a checkpoint torn by a crash is skipped."""
    if not checkpoints.is_dir():
        return None
    complete = [
        p
        for p in checkpoints.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return str(max(complete, key=lambda p: int(p.name.split("-")[-1]))) if complete else None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (``transformers.set_seed``) before a model with new weights is built."""
    from transformers import set_seed

    set_seed(seed)


FLAT_TOLERANCE = 0.01
"""A loss whose mean moved by at most this fraction of its starting value (or by at most the logged values' own
spread) has not moved."""


def warmup_warning(max_steps: int, warmup_steps: int, scheduler: str) -> str | None:
    """The warning for a run that the learning-rate warm-up leaves (almost) untrained, else ``None``.

    transformers' warm-up schedules (``get_linear_schedule_with_warmup`` and its cosine and constant
    siblings) give step 0 a learning rate of 0 and reach the peak only after ``warmup_steps`` (for a ratio r,
    ``ceil(r x max_steps)``). A run of one step with any warm-up therefore does not change the weights (the
    10-gold runs of ``recipes/sweeps/scifact-labels-vs-synthetic.toml`` equalled the zero-shot model to the
    last digit), and one whose every step is inside the warm-up never trains at its ``learning_rate``.

    Args:
        max_steps: optimizer steps of the run. warmup_steps: steps of warm-up. scheduler: the schedule's name
            (``constant`` has no warm-up).
    """
    if warmup_steps <= 0 or max_steps <= 0 or str(scheduler).rsplit(".", 1)[-1].lower() == "constant":
        return None
    if max_steps == 1:
        return (
            "training is 1 optimizer step and the warm-up gives it a learning rate of 0: the weights will not "
            "change; set warmup_ratio = 0, or train on more triples or for more epochs"
        )
    if max_steps <= warmup_steps:
        return (
            f"all {max_steps} optimizer steps are inside the warm-up of {warmup_steps} steps (the first at a "
            "learning rate of 0): the run never trains at its learning_rate; set warmup_ratio lower, or train "
            "on more triples or for more epochs"
        )
    return None


class FlatLossCheck:
    """Warns, once, when a training loss has not moved from its starting value after a quarter of the steps,
    the sign of a model that cannot learn (a learning rate of about 0, frozen weights, a head that outputs a
    constant: BCE stuck at ln 2 = 0.6931) or of training data it cannot tell apart.

    transformers logs the mean loss of each ``logging_steps`` window. At the first log at or past a quarter of
    ``max_steps`` with at least four logs, the mean of the first half of the logs (the starting value) is
    compared with the mean of the second half: the loss has not moved when they differ by at most
    :data:`FLAT_TOLERANCE` of the starting value, or by at most one standard deviation of the logged values (a
    change within the batch-to-batch noise). A run with too few logs by then is checked at the end; one with
    fewer than four logs is not checked. A decline smaller than the noise between the first logs also counts as
    not moving: the warning says "may". :attr:`flat` records the verdict (``None``: not checked) for the model
    card.
    """

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.flat: bool | None = None
        self.message = ""

    def add(self, step: int, max_steps: int, loss: float) -> None:
        """Record a logged loss at optimiser step ``step`` of ``max_steps``; check once a quarter is done."""
        self.losses.append(loss)
        if self.flat is None and len(self.losses) >= 4 and step * 4 >= max_steps:
            self.check(step, max_steps)

    def finish(self, max_steps: int) -> None:
        """At the end of training: check now if the quarter point came with too few logs."""
        if self.flat is None and len(self.losses) >= 4:
            self.check(max_steps, max_steps)

    def check(self, step: int, max_steps: int) -> None:
        """Decide :attr:`flat` from the losses logged so far, and warn when it is."""
        import statistics

        half = len(self.losses) // 2
        start, since = statistics.fmean(self.losses[:half]), statistics.fmean(self.losses[half:])
        change = since - start
        self.flat = abs(change) <= max(FLAT_TOLERANCE * abs(start), statistics.stdev(self.losses))
        if self.flat:
            self.message = (
                f"the training loss has not moved from its starting value after {step} of {max_steps} "
                f"steps ({start:.4f} over the first {half} logs, {since:.4f} over the next "
                f"{len(self.losses) - half}, {change / abs(start or 1):+.1%}, within the logged values' "
                "spread): the model may not be learning; check learning_rate, train_layers and the "
                "triples"
            )
            console.print(f"[yellow]warning:[/yellow] {self.message}", soft_wrap=True)


class ClosesProgress:
    """A training callback that holds a progress display; :func:`fit` calls :meth:`close` when training
    raises, so no stale bar stays on screen, and reads the loss check's verdict from :attr:`flat`."""

    flat: FlatLossCheck | None = None

    def close(self, failed: bool) -> None:
        """Stop the display (see :func:`inparsx.progress.close_progress`)."""


def progress_callback(keys: tuple[str, ...] = ("loss",)):
    """A ``TrainerCallback`` showing training progress (steps/s, ETA, the last logged ``keys``: the loss, and
    e.g. CPO's ``rewards/accuracies``) instead of tqdm and of the log dicts that transformers prints when tqdm
    is off: a rich bar on a terminal, plain lines (``training: 10/63 steps (16%) · 0.8 steps/s · elapsed
    0:00:12 · eta 0:01:06 · loss 0.3881``) where stderr is not one (:func:`inparsx.progress.make_progress`).
    It also warns when the loss has not moved from its starting value after a quarter of the steps
    (:class:`FlatLossCheck`)."""
    from transformers import TrainerCallback

    from inparsx.progress import close_progress

    class TrainingProgress(TrainerCallback, ClosesProgress):
        def __init__(self):
            self.progress = None
            self.flat = FlatLossCheck()

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            warning = warmup_warning(state.max_steps, args.get_warmup_steps(state.max_steps), args.lr_scheduler_type)
            if warning:
                console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
            self.progress = make_progress()
            self.progress.start()
            self.task = self.progress.add_task(
                "training", total=state.max_steps, unit="steps", completed=state.global_step, initial=state.global_step
            )

        def on_step_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs or self.progress is None:
                return
            shown = "  ".join(f"{key} {logs[key]:.4f}" for key in keys if key in logs)
            rate = f"  lr {logs['learning_rate']:.3g}" if "learning_rate" in logs else ""
            self.progress.update(self.task, extra=shown + rate)
            self.flat.add(state.global_step, state.max_steps, float(logs["loss"]))

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.flat.finish(state.max_steps)
            self.close(failed=False)

        def close(self, failed: bool) -> None:
            if self.progress is not None:
                close_progress(self.progress, failed)
                self.progress = None

    return TrainingProgress()


def fit(trainer, checkpoints: Path) -> dict[str, Any]:
    """Run ``trainer.train``, resuming from the last complete checkpoint in ``checkpoints`` when there is one.

    Returns the training metrics plus ``global_step``, ``resumed_from``, the logged loss history and, when
    the loss did not move (:class:`FlatLossCheck`), ``loss_flat`` (the warning's text). A progress display of
    a training that raises is closed first (no stale bar).
    """
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the raw log dicts; progress_callback() shows the loss instead
    resume = last_checkpoint(checkpoints)
    if resume and trainer.is_world_process_zero():
        console.print(f"resuming training from {resume}")
    shown = [callback for callback in trainer.callback_handler.callbacks if isinstance(callback, ClosesProgress)]
    try:
        output = trainer.train(resume_from_checkpoint=resume)
    except BaseException:
        for callback in shown:
            callback.close(failed=True)
        raise
    flat = next((c.flat.message for c in shown if c.flat is not None and c.flat.flat), "")
    history = [{"step": log["step"], "loss": log["loss"]} for log in trainer.state.log_history if "loss" in log]
    return {
        **output.metrics,
        "global_step": trainer.state.global_step,
        "resumed_from": resume,
        "loss_history": history,
        **({"loss_flat": flat} if flat else {}),
    }


class HFTrainer(Trainer):
    """Shared driver of the built-in trainers: read triples, seed, build, fit with resumption, save, card.

    Subclasses implement ``build(triples, base_model, seed) -> (model, hf_trainer_factory)`` and ``save``.
    ``callbacks`` (a list of ``transformers.TrainerCallback``) are passed to the Hugging Face trainer.
    """

    Options = TrainerOptions
    citation: str = ""
    usage: str = ""

    def __init__(self, options: TrainerOptions | None = None):
        super().__init__(options)
        self.callbacks: list = []
        self.negatives: int | None = None

    def models(self) -> list[ModelRef]:
        """``base_model``, every weight trained with AdamW at ``precision`` (``train_layers`` trains fewer:
        the estimate is then an upper bound); the trained model (``@train``) is of its size."""
        from inparsx.models import ModelRef

        opts = self.options
        return [ModelRef("base_model", opts.base_model, "trained", dtype=opts.precision, training="full", output=True)]

    def train(self, triples: Path, output_dir: Path, ctx: ComponentContext | None = None) -> Path:
        """Train on ``triples`` and save the model (``save_pretrained``) and its model card into ``output_dir``.

        Checkpoints go to ``output_dir/checkpoints`` and are removed after success unless
        ``keep_checkpoints``; a run that crashed resumes from the last complete one.

        Raises:
            DataError: unreadable triples, or too few negatives for the loss.
            InparsxError: an unusable ``base_model`` or ``precision``.
        """
        from inparsx.io import follow_umask_tree
        from inparsx.precision import describe
        from inparsx.train.card import write_model_card

        triples, output_dir = Path(triples), Path(output_dir)
        opts = self.options
        trainer, data, base_model, seed, (trainable, total) = self.prepare(triples, output_dir, ctx)
        if trainer.is_world_process_zero():
            console.print(
                f"train ({self.name}): {opts.base_model} on "
                f"{describe(training_device(), opts.precision, resolve_training_precision(opts.precision))}",
                markup=False,
                soft_wrap=True,
            )
        metrics = {
            **fit(trainer, output_dir / CHECKPOINTS),
            "trainable_parameters": trainable,
            "parameters": total,
            "negatives_per_query": self.negatives,
        }
        if trainer.is_world_process_zero():
            self.save(trainer, output_dir)
            follow_umask_tree(output_dir)  # safetensors writes its files 0600; outputs follow the umask
            write_model_card(output_dir, self, data, triples, base_model, seed, metrics, ctx)
            if not opts.keep_checkpoints:
                shutil.rmtree(output_dir / CHECKPOINTS, ignore_errors=True)
        return output_dir

    def prepare(self, triples: Path, output_dir: Path, ctx: ComponentContext | None = None):
        """Everything before ``fit``: read the triples, resolve the base model and seed, build the Hugging Face
        trainer and freeze layers. Returns ``(hf_trainer, triples, base_model, seed, (trainable, total))``."""
        from inparsx.train.data import read_triples

        opts = self.options
        seed = resolve_seed(opts, ctx)
        data = read_triples(triples, opts.max_triples)
        base_model = resolve_base_model(opts.base_model, ctx)
        seed_everything(seed)
        trainer = self.build(data, Path(triples), base_model, Path(output_dir) / CHECKPOINTS, seed)
        counts = freeze_lower_layers(trainer.model, opts.train_layers)
        return trainer, data, base_model, seed, counts

    def negatives_for(self, triples: Sequence[Triple]) -> int:
        """Hard negatives per query this run trains on (``num_negatives``, else what the triples carry; see
        :func:`inparsx.train.data.negatives_per_query`); remembered in ``self.negatives`` for the model card."""
        from inparsx.train.data import negatives_per_query

        self.negatives = negatives_per_query(triples, self.options.num_negatives)
        return self.negatives

    def trainer_callbacks(self) -> list:
        """The rich progress bar plus any ``self.callbacks``."""
        return [progress_callback(), *self.callbacks]

    def build(self, triples: list, path: Path, base_model: str, checkpoints: Path, seed: int):
        """The Hugging Face trainer, ready to ``train()``."""
        raise NotImplementedError

    def save(self, trainer, output_dir: Path) -> None:
        """Write the trained model (and tokenizer) with ``save_pretrained``."""
        raise NotImplementedError


def read_training_info(model_dir: str | Path) -> dict[str, Any]:
    """The ``inparsx_training.json`` a trainer writes beside the model (options, data, metrics)."""
    return json.loads((Path(model_dir) / "inparsx_training.json").read_text())
