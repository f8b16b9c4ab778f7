"""``cpo``: fine-tune the query generator with Contrastive Preference Optimization on corpus-only pairs.

InPars+ (arXiv 2508.13930, ``danilotpnta/IR2-project``: ``inpars/cpo_dataset.py``, ``cpo_finetune.py``) builds
preference pairs by judging candidate queries of each document and trains with TRL's CPO (Xu et al., 2024)
and a LoRA. Here every candidate is sampled from the generator itself (never a qrels query, so no labelled
split is read): ``n_candidates`` queries for each of ``n_docs`` corpus documents, judged by
:mod:`inparsx.tune.judge`; the best becomes ``chosen``, the worst ``rejected``, and pairs whose margin is
below ``min_margin`` are dropped. Training is TRL's ``trl.experimental.cpo.CPOTrainer`` with a peft LoRA,
optionally on an nf4 base (QLoRA). The adapter is merged into the full-precision base and saved as
``tune/model``, which the ``hf`` or ``vllm`` generator loads as ``model = "@tune"`` with the same prompt options.
The candidates (and the before/after queries) come from the generator ``generator.use`` names: ``hf``
(default) or ``vllm``; training always runs in transformers.

Files in ``tune/``: ``candidates.jsonl`` (the sampled queries, resumable), ``judge-scores.jsonl``,
``pairs.jsonl`` (``doc_id``, ``prompt``, ``chosen``, ``rejected``, their scores, ``margin``),
``adapter/`` (the LoRA) and ``adapter.done.json`` (the key it was trained under, its metrics), ``model/``
(merged), ``training.json`` (options, pair counts, the logged loss,
reward accuracy and margins per step), and ``query_eval.json`` when ``eval_docs`` > 0 (the judge's mean
score of greedy queries on held-out documents before and after tuning, InPars+'s QueryEval comparison).
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from inparsx.artifacts import MODEL, QUERY_EVAL
from inparsx.errors import InparsxError
from inparsx.generate.spec import ModelGeneratorSpec
from inparsx.io import follow_umask_tree, write_json, write_jsonl
from inparsx.models import saveable_model
from inparsx.precision import AUTO_DESCRIPTION
from inparsx.records import SyntheticQuery
from inparsx.tune.base import Tuner
from inparsx.tune.judge import JudgedOptions, judge_models, judge_records

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.generate.prompted import PromptedGenerator
    from inparsx.models import ModelRef
    from inparsx.records import Document

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
"""InPars+'s LoRA targets (``cpo_finetune.py``): every attention and MLP projection of a Llama block."""

TUNER_SET: dict[str, tuple[Any, str]] = {
    "model": ("base_model", "base_model"),
    "num_docs": (1, "n_docs"),
    "do_sample": (True, "sampling the candidates"),
    "num_queries_per_doc": (2, "n_candidates"),
    "temperature": (1.0, "temperature"),
    "top_p": (1.0, "top_p"),
}
"""Generator options the tuner sets itself, so ``[tune.generator]`` may not carry them: key -> (the value its
validation fills in, the tuner option it comes from)."""


class CandidateGeneratorSpec(ModelGeneratorSpec):
    """``[tune.generator]`` of ``cpo``: the generator that samples the candidate queries (and the before/after
    queries) from ``base_model``: ``hf`` (default), ``vllm``, or another generator that loads the model itself;
    the keys of :data:`TUNER_SET` are the tuner's own."""

    SUPPLIER: ClassVar[str] = "the tuner"
    SUPPLIED: ClassVar[dict[str, tuple[Any, str]]] = TUNER_SET

    @classmethod
    def accepts(cls, component: type) -> str | None:
        unfit = super().accepts(component)
        return None if unfit is None else f"generator.{unfit}: the tuner samples from base_model with it"


SIMPO_LOSSES = ("simpo", "alphapo")
"""CPO loss types that read ``simpo_gamma`` (TRL's CPOConfig turns ``alphapo`` into ``simpo``)."""

LOGGED = ("loss", "rewards/accuracies", "rewards/margins", "nll_loss")
"""CPOTrainer's logged metrics shown on the progress bar and kept in ``training.json``."""

ADAPTER_DONE = "adapter.done.json"
"""``tune/adapter.done.json``: the key the saved adapter was trained under, and its training metrics."""


class CPOOptions(JudgedOptions):
    """``[tune] use = "cpo"``.

    ``base_model``: the generator to tune (hub id or folder). ``generator``: the ``[tune.generator]`` table, a
    typed spec (:class:`CandidateGeneratorSpec`): ``use``, the generator that samples, ``"hf"`` (default),
    ``"vllm"`` or another that loads a model itself, and its options for the prompt and decoding (``prompt``,
    ``n_fewshot``, ``max_new_tokens``, ``dtype``...), the same as the ``[generate]`` table should carry; the
    keys the tuner sets (:data:`TUNER_SET`) are refused. ``n_docs`` corpus documents x ``n_candidates`` sampled queries
    (``temperature``, ``top_p``). ``judge``: the ``[tune.judge]`` table, :class:`~inparsx.tune.judge.JudgeOptions`
    (its ``depth`` is the judge's BM25 depth). ``min_margin``:
    pairs whose best-minus-worst score is lower are dropped. LoRA: ``lora_r``, ``lora_alpha``,
    ``lora_dropout``, ``target_modules``; ``quantization = "nf4"`` trains on a 4-bit base (QLoRA).
    ``precision``: ``auto`` (the one rule of ``inparsx.precision``: bf16 where the device computes it
    natively, fp16 on an older CUDA GPU, fp32 elsewhere), ``bf16`` or ``fp32``. CPO (TRL
    ``CPOConfig``): ``loss_type``, ``beta``, ``cpo_alpha`` (the weight of the NLL term on the chosen query),
    ``simpo_gamma`` (SimPO's target margin: only with ``loss_type = "simpo"`` or ``"alphapo"``, default 0.5
    there), ``alpha`` (AlphaPO's reward shape, every loss type; 0: log-probability rewards), ``max_length``
    (prompt plus completion, tokens). TRL's ``"alphapo"`` is ``"simpo"`` with ``cpo_alpha = 0`` and a non-zero
    ``alpha``: it needs ``alpha``, and ``cpo_alpha`` defaults to 0 with it. A combination TRL would ignore
    (``simpo_gamma`` with another loss, a non-zero ``cpo_alpha`` with ``"alphapo"``) is refused.
    ``save_steps``: checkpoints (in ``tune/checkpoints``) a killed run resumes from.
    ``eval_docs``: held-out documents for the before/after comparison (0: none).
    """

    base_model: str
    generator: CandidateGeneratorSpec = Field(default_factory=lambda: CandidateGeneratorSpec.model_construct())
    n_docs: int = Field(300, ge=1)
    n_candidates: int = Field(4, ge=2)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(0.95, gt=0, le=1)
    min_margin: float = Field(0.0, ge=0)
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: list(LORA_TARGETS))
    quantization: Literal["none", "nf4"] = "none"
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description=AUTO_DESCRIPTION)
    loss_type: Literal["sigmoid", "hinge", "ipo", "simpo", "alphapo"] = "sigmoid"
    beta: float = Field(0.1, gt=0)
    cpo_alpha: float = Field(1.0, ge=0)
    simpo_gamma: float | None = Field(
        None,
        description='SimPO\'s target reward margin; only with loss_type = "simpo" or "alphapo" (default 0.5 there)',
    )
    alpha: float = Field(0.0, description="AlphaPO's reward shape (TRL CPOConfig.alpha); 0: log-probabilities")
    max_steps: int | None = Field(None, ge=1, description="default: one pass over the pairs (epochs)")
    epochs: float = Field(1.0, gt=0)
    learning_rate: float = Field(1e-4, gt=0)
    lr_scheduler: str = "linear"
    batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(512, ge=16)
    gradient_checkpointing: bool = False
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(20, ge=0, description="checkpoint every n steps, so a killed run resumes (0: never)")
    eval_docs: int = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _loss_defaults(cls, data: Any) -> Any:
        """``simpo_gamma`` defaults to 0.5 with the SimPO losses, ``cpo_alpha`` to 0 with AlphaPO (TRL's
        values), so the filled recipe says what TRL computes."""
        if isinstance(data, dict):
            loss = data.get("loss_type", cls.model_fields["loss_type"].default)
            if loss in SIMPO_LOSSES and "simpo_gamma" not in data:
                data = {**data, "simpo_gamma": 0.5}
            if loss == "alphapo" and "cpo_alpha" not in data:
                data = {**data, "cpo_alpha": 0.0}
        return data

    @model_validator(mode="after")
    def _check_loss(self) -> CPOOptions:
        if self.simpo_gamma is not None and self.loss_type not in SIMPO_LOSSES:
            raise ValueError(
                f"simpo_gamma = {self.simpo_gamma:g} would be ignored: TRL's CPOTrainer reads it only "
                f'with loss_type = "simpo" or "alphapo", not {self.loss_type!r}; remove it or '
                'set loss_type = "simpo"'
            )
        if self.loss_type == "alphapo" and self.cpo_alpha != 0:
            raise ValueError(
                f"cpo_alpha = {self.cpo_alpha:g} would be ignored: TRL's CPOConfig sets cpo_alpha = 0 "
                'for loss_type = "alphapo"; for SimPO with an NLL term use loss_type = "simpo" '
                "and alpha"
            )
        if self.loss_type == "alphapo" and self.alpha == 0:
            raise ValueError(
                'loss_type = "alphapo" with alpha = 0 is exactly loss_type = "simpo" with '
                "cpo_alpha = 0 (TRL's AlphaPO is SimPO with alpha's reward shape); set alpha (e.g. "
                '0.25) or use loss_type = "simpo"'
            )
        return self

    def sampler(self, **changes: Any) -> CandidateGeneratorSpec:
        """The sampling generator's spec with the options the tuner sets (:data:`TUNER_SET`: ``base_model``,
        ``n_docs``, sampling, ``n_candidates``, ``temperature``, ``top_p``) beside those of ``[tune.generator]``;
        ``changes`` override them (the greedy before/after queries)."""
        tuner_set = {
            "model": self.base_model,
            "num_docs": self.n_docs,
            "do_sample": True,
            "num_queries_per_doc": self.n_candidates,
            "temperature": self.temperature,
            "top_p": self.top_p,
        }
        spec: CandidateGeneratorSpec = self.generator.with_options(**{**tuner_set, **changes})
        return spec


class CPOTuner(Tuner):
    """Samples and judges candidate queries, builds (chosen, rejected) pairs, trains a LoRA with TRL's CPO,
    merges it and saves the generator to ``tune/model`` (see the module docstring)."""

    name: ClassVar[str] = "cpo"
    Options: ClassVar[type[CPOOptions]] = CPOOptions
    output: ClassVar[str] = MODEL

    def models(self) -> list[ModelRef]:
        """``base_model`` twice: as the ``hf`` generator that samples ``n_candidates`` queries for each of
        ``n_docs`` (+ ``eval_docs``) documents, and as the base trained with a LoRA (in ``quantization``, at
        ``precision``), whose merge is ``tune/model`` (``@tune``); and the judge's reranker model."""
        from dataclasses import replace

        from inparsx.models import ModelRef

        opts = self.options
        sampler = replace(self.generator().models()[0], option="base_model", role="generator (candidates)")
        dtype = {"auto": "auto", "bf16": "bf16", "fp32": "fp32"}[opts.precision]
        trained = ModelRef(
            "base_model",
            opts.base_model,
            "trained (LoRA)",
            dtype=dtype,
            quantization=opts.quantization,
            training="lora",
            lora_r=opts.lora_r,
            lora_targets=tuple(opts.target_modules),
            output=True,
        )
        return [sampler, trained, *judge_models(opts.judge)]

    def tune(self, ctx: ComponentContext) -> Path:
        """Run the whole tuner; every step resumes from its file (candidates, judge scores, checkpoints, the
        saved adapter: see :meth:`train`).

        Raises:
            InparsxError: no pair survives ``min_margin``, or a model cannot be loaded.
        """
        opts = self.options
        docs = _sample(ctx, opts.n_docs + opts.eval_docs)
        train_docs, held_out = docs[: opts.n_docs], docs[opts.n_docs :]
        candidates = self.sample_candidates(ctx, train_docs)
        scores = judge_records(candidates, opts.judge, ctx, ctx.dir / "judge-scores.jsonl")
        pairs = build_pairs(candidates, scores, opts.min_margin, stop=self.stop())
        write_jsonl(ctx.dir / "pairs.jsonl", pairs)
        ctx.log(
            f"cpo: {len(pairs)} preference pairs from {len(train_docs)} documents "
            f"({len(candidates)} candidates, min_margin {opts.min_margin:g}) -> {ctx.dir / 'pairs.jsonl'}"
        )
        if not pairs:
            raise InparsxError(
                f"cpo: no preference pair left (min_margin = {opts.min_margin}); lower min_margin "
                "or raise n_candidates / temperature"
            )
        metrics = self.train(pairs, ctx)
        model_dir = save_merged(opts, ctx.dir / "adapter", ctx.dir / MODEL)
        options = {**opts.model_dump(mode="json"), "precision": metrics["precision"]}  # resolved, never "auto"
        write_json(
            ctx.dir / "training.json",
            {
                "options": options,
                "pairs": len(pairs),
                "candidates": len(candidates),
                "documents": len(train_docs),
                **metrics,
            },
        )
        if held_out:
            self.query_eval(ctx, held_out, str(model_dir))
        return model_dir

    def stop(self) -> str:
        """The text that ends a query in the prompt's format (the generator's first stop string)."""
        stops = self.generator().options.stop
        return stops[0] if stops else ""

    def sample_candidates(self, ctx: ComponentContext, docs: list[Document]) -> list[SyntheticQuery]:
        """``n_candidates`` sampled queries per document, through the sampling generator (``generator.use``)
        and the generate stage's resumable writer (``tune/candidates.jsonl``)."""
        from inparsx.artifacts import read_synthetic_queries
        from inparsx.generate.stage import generate_queries

        path = ctx.dir / "candidates.jsonl"
        if not path.is_file():
            generate_queries(ctx, self.generator(ctx), path, docs=docs)
        return read_synthetic_queries(path)

    def generator(self, ctx: ComponentContext | None = None, **changes: Any) -> PromptedGenerator:
        """The sampling generator (``generator.use``) built from this tuner's options (``changes`` override them,
        :meth:`CPOOptions.sampler`) with ``ctx.build`` (the registry that validated the recipe), or from the
        process-wide registry without ``ctx`` (the pre-flight check's :meth:`models`)."""
        from inparsx.plugins import get_registry

        spec = self.options.sampler(**changes)
        built: PromptedGenerator = ctx.build(spec) if ctx is not None else spec.build(get_registry())
        return built

    def train(self, pairs: list[dict[str, Any]], ctx: ComponentContext) -> dict[str, Any]:
        """CPO with a LoRA on ``pairs``; saves the adapter to ``tune/adapter``; returns metrics and the log.

        An adapter saved under the same :meth:`training_key` (``tune/adapter.done.json`` holds the key and the
        metrics) is reused without training: a crash after training (in the merge, in the query evaluation)
        resumes there, not from step 0. The marker is removed before training and written once the adapter is
        saved, so a half-saved adapter is never reused.
        """
        marker = ctx.dir / ADAPTER_DONE
        key = self.training_key(pairs, ctx)
        done = _read_json(marker)
        if done.get("key") == key and (ctx.dir / "adapter").is_dir():
            ctx.log(f"cpo: reusing the adapter trained under this key ({ctx.dir / 'adapter'}), not training again")
            return done["metrics"]
        marker.unlink(missing_ok=True)
        result = self._train(pairs, ctx)
        write_json(marker, {"key": key, "metrics": result})
        return result

    def training_key(self, pairs: list[dict[str, Any]], ctx: ComponentContext) -> str:
        """sha256 (16 hex digits) of what the adapter depends on: the stage's cache key
        (:attr:`~inparsx.context.ComponentContext.cache_key`), the options, the seed and the pairs' texts."""
        import hashlib
        import json

        payload = {
            "key": ctx.cache_key,
            "options": self.options.model_dump(mode="json"),
            "seed": ctx.seed,
            "pairs": [[p["prompt"], p["chosen"], p["rejected"]] for p in pairs],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def _train(self, pairs: list[dict[str, Any]], ctx: ComponentContext) -> dict[str, Any]:
        """Train (resuming from ``tune/checkpoints``) and save the adapter; the checkpoints are removed after."""
        from datasets import Dataset as HFDataset
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        from inparsx.precision import describe, ran_with
        from inparsx.train.common import (
            checkpointing_flag,
            fit,
            progress_callback,
            resolve_training_precision,
            seed_everything,
            training_device,
        )

        opts = self.options
        resolved = resolve_training_precision(opts.precision, "tune.precision")
        ctx.log(f"cpo: training a LoRA on {opts.base_model} on {describe(training_device(), opts.precision, resolved)}")
        seed_everything(ctx.seed)
        model, tokenizer = self.load_base(train=True)
        checkpoints = ctx.dir / "checkpoints"
        args = CPOConfig(
            output_dir=str(checkpoints),
            seed=ctx.seed,
            max_steps=opts.max_steps or -1,
            num_train_epochs=opts.epochs,
            per_device_train_batch_size=opts.batch_size,
            gradient_accumulation_steps=opts.gradient_accumulation_steps,
            learning_rate=opts.learning_rate,
            lr_scheduler_type=opts.lr_scheduler,
            loss_type=opts.loss_type,
            beta=opts.beta,
            cpo_alpha=opts.cpo_alpha,
            alpha=opts.alpha,
            max_length=opts.max_length,
            **({"simpo_gamma": opts.simpo_gamma} if opts.simpo_gamma is not None else {}),
            **checkpointing_flag(opts.gradient_checkpointing),
            logging_steps=opts.logging_steps,
            save_strategy="steps" if opts.save_steps else "no",
            save_steps=opts.save_steps or 500,
            save_total_limit=1,
            report_to="none",
            disable_tqdm=True,
            remove_unused_columns=False,
            dataloader_num_workers=0,
            **self.precision_flags(),
        )
        rows = [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]
        trainer = CPOTrainer(
            model=model,
            args=args,
            train_dataset=HFDataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=self.lora_config(),
            callbacks=[progress_callback(LOGGED)],
        )
        metrics = fit(trainer, checkpoints)
        log = [
            {k: entry[k] for k in ("step", *LOGGED) if k in entry}
            for entry in trainer.state.log_history
            if "loss" in entry
        ]
        trainer.model.save_pretrained(ctx.dir / "adapter")
        sort_adapter_config(ctx.dir / "adapter")
        tokenizer.save_pretrained(ctx.dir / "adapter")
        follow_umask_tree(ctx.dir / "adapter")  # safetensors writes its files 0600; outputs follow the umask
        shutil.rmtree(checkpoints, ignore_errors=True)
        metrics.pop("loss_history", None)
        return {
            "train": metrics,
            "log": log,
            "summary": summarise(log),
            **ran_with(training_device(), opts.precision, resolved),
        }

    def load_base(self, train: bool) -> tuple[Any, Any]:
        """The base generator and tokenizer, loaded as the ``hf`` generator loads it; for training with
        ``quantization = "nf4"`` in 4 bits (prepared for k-bit training), in bf16 or fp32 as ``precision``
        says, and always unquantised for merging (``train = False``). A GGUF checkpoint (e.g. the packaged
        SmolLM2) is rebuilt as a plain model (:func:`inparsx.models.saveable_model`): its weights are already
        dequantized, and transformers' ``Trainer`` refuses any model flagged as GGUF-quantized."""
        from inparsx.generate.hf import HFOptions, load_model

        opts = self.options
        dtype = "bf16" if self.precision_flags()["bf16"] else "fp32"
        quantization = opts.quantization if train else "none"
        loading = {
            k: v
            for k, v in opts.sampler(dtype=dtype, quantization=quantization).options.items()
            if k in HFOptions.model_fields
        }  # the model's own options; vllm's engine options do not apply
        model, tokenizer = load_model(opts.base_model, HFOptions(**loading))
        model = saveable_model(model)  # GGUF weights load dequantized, but transformers' Trainer refuses a GGUF model
        if quantization == "nf4":
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=opts.gradient_checkpointing)
        tokenizer.padding_side = "right"
        return model, tokenizer

    def lora_config(self) -> Any:
        """The peft ``LoraConfig`` of the options (causal LM task, no bias)."""
        from peft import LoraConfig

        opts = self.options
        return LoraConfig(
            r=opts.lora_r,
            lora_alpha=opts.lora_alpha,
            lora_dropout=opts.lora_dropout,
            target_modules=list(opts.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )

    def precision_flags(self) -> dict[str, bool]:
        """``bf16`` / ``fp16`` / ``use_cpu`` flags of the training arguments: ``precision`` resolved by the one
        ``auto`` rule (:data:`inparsx.precision.AUTO_RULE`), as the trainers resolve it."""
        from inparsx.train.common import resolve_training_precision, training_device

        resolved = resolve_training_precision(self.options.precision, "tune.precision")
        return {"bf16": resolved == "bf16", "fp16": resolved == "fp16", "use_cpu": training_device().type == "cpu"}

    def query_eval(self, ctx: ComponentContext, docs: list[Document], tuned: str) -> dict[str, Any]:
        """The judge's mean score of greedy queries on held-out ``docs``, from the base and the tuned
        generator; written to ``tune/query_eval.json``."""
        from inparsx.artifacts import read_synthetic_queries
        from inparsx.generate.stage import generate_queries

        result: dict[str, Any] = {"documents": len(docs), "judge": self.options.judge.by}
        for name, model in (("before", self.options.base_model), ("after", tuned)):
            path = ctx.dir / f"query-eval-{name}.jsonl"
            greedy = self.generator(
                ctx, model=model, do_sample=False, num_queries_per_doc=1, temperature=1.0, top_p=1.0
            )
            if not path.is_file():
                generate_queries(ctx, greedy, path, docs=docs)
            records = read_synthetic_queries(path)
            scores = judge_records(records, self.options.judge, ctx, ctx.dir / f"query-eval-{name}-scores.jsonl")
            result[name] = sum(scores.values()) / len(scores) if scores else None
        write_json(ctx.dir / QUERY_EVAL.file, result)
        ctx.log(
            f"cpo: judge mean on {len(docs)} held-out documents, greedy: before {result['before']:.4f}, "
            f"after {result['after']:.4f}"
        )
        return result


def _read_json(path: Path) -> dict[str, Any]:
    """``path`` parsed, or ``{}`` when it is missing or not valid JSON (an interrupted write)."""
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _sample(ctx: ComponentContext, count: int) -> list[Document]:
    """``count`` corpus documents drawn with the seed (a stream of its own: ``<seed>:cpo``)."""
    from inparsx.generate.stage import sample_docs

    return sample_docs(ctx.dataset, count, random.Random(f"{ctx.seed}:cpo").randrange(2**31))


def completion(prompt: str, query: str, stop: str) -> str:
    """The text a generator writes after ``prompt`` for ``query``: a space when the prompt does not end with
    whitespace (``Relevant Query:`` -> `` what...``), the query, then the stop string (e.g. a newline)."""
    return ("" if not prompt or prompt[-1].isspace() else " ") + query + stop


def build_pairs(
    records: list[SyntheticQuery], scores: dict[str, float], min_margin: float, stop: str = "\n"
) -> list[dict[str, Any]]:
    """One (chosen, rejected) pair per document: its best- and worst-judged distinct non-empty queries.

    Documents with fewer than two distinct queries, or whose margin (best score minus worst) is below
    ``min_margin`` (or zero), give no pair. Ties keep the earlier candidate. Returns JSON-ready dicts in
    document order: ``doc_id``, ``prompt``, ``chosen``, ``rejected``, ``chosen_query``, ``rejected_query``,
    ``chosen_score``, ``rejected_score``, ``margin``, ``candidates``.
    """
    by_doc: dict[str, list[SyntheticQuery]] = defaultdict(list)
    for record in records:
        if record.query_id in scores and record.query.strip():
            by_doc[record.doc_id].append(record)
    pairs = []
    for doc_id, group in by_doc.items():
        distinct = list({r.query.strip(): r for r in reversed(group)}.values())[::-1]
        if len(distinct) < 2:
            continue
        ranked = sorted(distinct, key=lambda r: -scores[r.query_id])
        best, worst = ranked[0], ranked[-1]
        margin = scores[best.query_id] - scores[worst.query_id]
        if margin <= 0 or margin < min_margin:
            continue
        prompt = best.prompt_text or ""
        pairs.append(
            {
                "doc_id": doc_id,
                "prompt": prompt,
                "chosen": completion(prompt, best.query.strip(), stop),
                "rejected": completion(prompt, worst.query.strip(), stop),
                "chosen_query": best.query,
                "rejected_query": worst.query,
                "chosen_score": scores[best.query_id],
                "rejected_score": scores[worst.query_id],
                "margin": margin,
                "candidates": [{"query": r.query, "score": scores[r.query_id]} for r in group],
            }
        )
    return pairs


def summarise(log: list[dict[str, Any]]) -> dict[str, Any]:
    """First and last logged value of each metric in :data:`LOGGED`, and the mean reward accuracy."""
    summary: dict[str, Any] = {}
    for key in LOGGED:
        values = [entry[key] for entry in log if key in entry]
        if values:
            summary[key] = {"first": values[0], "last": values[-1], "mean": sum(values) / len(values)}
    return summary


def sort_adapter_config(adapter: Path) -> None:
    """Rewrite peft's ``adapter_config.json`` with its lists sorted where peft keeps a set: peft turns
    ``target_modules`` (and ``modules_to_save``...) into a ``set`` and writes it in string-hash order, which
    changes with ``PYTHONHASHSEED``, so one seed gave different bytes from run to run."""
    import json

    path = adapter / "adapter_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in (
        "target_modules",
        "modules_to_save",
        "exclude_modules",
        "layers_to_transform",
        "trainable_token_indices",
    ):
        if isinstance(config.get(key), list) and all(isinstance(item, (str, int)) for item in config[key]):
            config[key] = sorted(config[key], key=lambda item: (isinstance(item, str), item))
    write_json(path, config)


def save_merged(options: CPOOptions, adapter: Path, out: Path) -> Path:
    """Merge the LoRA in ``adapter`` into an unquantised copy of the base and save it (with the tokenizer) to
    ``out``. A base that refuses ``save_pretrained`` (quantised, or loaded from GGUF) is copied into a fresh
    model built from its config first. Written to a temporary folder and renamed."""
    from peft import PeftModel

    tuner = CPOTuner(options)
    base, tokenizer = tuner.load_base(train=False)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    merged.save_pretrained(tmp)
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(tmp)
    follow_umask_tree(tmp)  # mkdtemp makes it 0700 and safetensors its files 0600; outputs follow the umask
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
