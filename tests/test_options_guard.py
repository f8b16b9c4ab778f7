"""The guard against dead options: every field of every built-in component's ``Options`` model either has a probe
here that varies it and shows that something downstream changes (the prompt text, the generated records, the
arguments that reach the library call, the decisions, the triples, the trainable parameters, the written runs,
the metrics), or is listed with the reason it has no observable effect in this set-up.

A new option with neither fails :func:`test_every_option_has_a_probe_or_a_reason`, which prints how many
fields are covered. Probes use tiny random models and a 30-query slice of real SciFact, and compare the
smallest artefact that shows the effect.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from inparsx.context import ComponentContext
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.errors import InparsxError
from inparsx.generate.dspy_generator import DSPyGenerator, build_program
from inparsx.pipeline import StageContext
from inparsx.plugins import Options, get_registry
from inparsx.recipe import STAGE_OPTIONS, DatasetConfig, StageKeys, stage_options_model, validate_recipe
from inparsx.records import SyntheticQuery
from inparsx.testing import SIMPLE_CHAT_TEMPLATE, tiny_bert, tiny_llama, tiny_t5, train_tokenizer
from inparsx.testing.fakes import ChecksumReranker
from inparsx.testing.plugins import plugin_module, registered
from inparsx.train.base import Trainer
from inparsx.tune.judge import JudgeOptions


@dataclass(frozen=True)
class Vary:
    """Probe: set the field to ``value`` (on top of ``base``, the options under which the field matters) and
    expect the component's artefact (``artefact``: which one, when a component has several) to change."""

    value: Any
    base: dict = field(default_factory=dict)
    artefact: str = "default"


@dataclass(frozen=True)
class Reason:
    """No observable effect in this set-up, and why."""

    why: str


@dataclass(frozen=True)
class Model:
    """A tiny model of the probe environment: ``base`` (the default one of the component) or ``alt`` (another)."""

    which: str


@dataclass(frozen=True)
class File:
    """A file the probe environment writes (a custom template, a modified prompts file)."""

    name: str


SPEED_ONLY = "speed only: the output is the same by design"

TRAINER_SHARED = {
    "base_model": Vary(Model("alt")),
    "max_steps": Vary(2),
    "epochs": Vary(2.0, {"max_steps": None}),
    "batch_size": Vary(4),
    "gradient_accumulation_steps": Vary(2),
    "learning_rate": Vary(1e-3),
    "lr_scheduler": Vary("cosine"),
    "warmup_ratio": Vary(0.3, {"lr_scheduler": "linear"}),
    "weight_decay": Vary(0.2),
    "max_length": Vary(32),
    "num_negatives": Vary(1),
    "max_triples": Vary(2),
    "precision": Vary("bf16"),
    "gradient_checkpointing": Vary(True),
    "train_layers": Vary(1),
    "save_steps": Vary(7),
    "keep_checkpoints": Vary(True, {"save_steps": 1}, artefact="train"),
    "logging_steps": Vary(3),
    "seed": Vary(5),
}

RERANKER_SHARED = {
    "batch_size": Reason(f"{SPEED_ONLY}: pairs are scored alike in any batch (length-sorted, padding masked)"),
    "max_length": Vary(32),
    "dtype": Vary("bf16"),
    "device": Reason("the test machine has one device, the CPU: 'auto' and 'cpu' name the same one"),
}

RERANK_STAGE = {
    "model": Vary(Model("alt")),
    "depth": Vary(2),
    "interpolate": Vary(0.5),
    "fusion": Vary("rrf"),
    "rrf_k": Vary(2, {"fusion": "rrf"}),
    "zero_shot_model": Vary(Model("alt")),
    "first_stage": Vary("other"),
    "compare_models": Vary({"other": Model("alt")}),
    "fuse": Vary({"first_stage": 1, "model": 3}),
    "fuse_method": Vary("rrf", {"fuse": {"first_stage": 1, "model": 3}}),
    "zero_shot_reranker": Vary("recording", {"zero_shot_model": Model("alt")}),
    "zero_shot_options": Vary(
        {"max_length": 16}, {"zero_shot_model": Model("alt"), "zero_shot_reranker": "cross-encoder"}
    ),
}

ESTIMATE_STAGE = {
    "docs": Vary(5, artefact="holdout"),
    "metrics": Vary(["ndcg@3"]),
    "positive_text": Vary(False),
}

RETRIEVER_SPEED = {
    "threads": Reason(f"{SPEED_ONLY}: search threads"),
    "batch_size": Reason(f"{SPEED_ONLY}: queries per search call"),
}

CONSISTENCY_SELF = {"by": "self", "trainer": "recording", "reranker": {"use": "recording"}}

TEACHER = {"teacher": {"use": "recording", "model": "m"}}
"""bm25-negatives with a teacher: the triples carry its scores (fused with BM25 by ``teacher_alpha``)."""

ENDPOINT = {"api_base": "http://localhost:1"}
DSPY_SHARED = {
    "model": Vary("m2"),
    "api_base": Vary(ENDPOINT["api_base"]),
    "api_key_env": Vary("GUARD_KEY", ENDPOINT),
    "module": Vary("Predict"),
    "program": Vary(File("program.json")),
    "instruction": Vary("Ask."),
    "max_doc_words": Vary(5),
    "max_new_tokens": Vary(7),
    "temperature": Vary(0.5),
    "dtype": Vary("bf16"),
    "quantization": Vary("nf4"),
}
"""The ``dspy`` generator's options, which the ``dspy`` tuner has too (its program and LM are the generator's)."""

CONSISTENCY_JUDGE = {"by": "consistency"}
JUDGE_TABLE = {
    "by": Vary("consistency"),
    "reranker": Vary({"use": "reverse", "model": "m"}),
    "weight": Vary(0.9, {"by": "mix"}),
    "depth": Vary(3, CONSISTENCY_JUDGE),
    "retriever": Vary({"use": "bm25", "k1": 3.0, "b": 1.0}, CONSISTENCY_JUDGE),
}
"""The fields of the ``[tune.judge]`` table (``cpo`` and ``dspy`` tuners), probed through the ``dspy`` tuner; the
artefact is the judge's scores of synthetic queries."""
JUDGE_SHARED = {"judge": Vary({"by": "consistency", "retriever": "bm25s", "depth": 8}, artefact="judge")}
"""The tuners' ``judge`` table as a whole."""

HF_PROMPTED = {
    "num_docs": Vary(3, artefact="stage"),
    "prompt": Vary("inpars-gbq"),
    "template": Vary("promptagator-fiqa", {"prompt": "promptagator"}),
    "template_mode": Vary("dynamic", {"prompt": "custom", "template": File("custom.txt")}),
    "prompts_file": Vary(File("prompts.yaml")),
    "chat": Vary(True),
    "instruction": Vary("Ask about the document.", {"chat": True}),
    "n_fewshot": Vary(1, {"prompt": "promptagator"}),
    "fewshot_pool": Vary(3, {"prompt": "promptagator"}),
    "max_doc_tokens": Vary(8),
    "max_prompt_tokens": Vary(400, {"prompt": "promptagator"}),
    "max_new_tokens": Vary(2),
    "stop": Vary(list("aeiou st")),
    "do_sample": Vary(True),
    "temperature": Vary(0.3, {"do_sample": True}),
    "top_p": Vary(0.3, {"do_sample": True}),
    "top_k": Vary(2, {"do_sample": True}),
    "num_queries_per_doc": Vary(2, {"do_sample": True}),
}
"""The prompt and decoding options the ``hf`` and ``vllm`` generators share, and their probes."""

TABLE: dict[tuple[str, str], dict[str, Vary | Reason]] = {
    ("retrievers", "bm25"): {
        "k": Vary(3),
        "k1": Vary(3.0),
        "b": Vary(1.0),
        "fields": Vary("multifield"),
        **RETRIEVER_SPEED,
    },
    ("retrievers", "bm25s"): {
        "k": Vary(3),
        "k1": Vary(3.0),
        "b": Vary(1.0),
        "method": Vary("bm25+"),
        "stemmer": Vary("none"),
        "stopwords": Vary("none"),
        "fields": Reason("a single value ('flat'), accepted so that a recipe can switch between bm25 and bm25s"),
        **RETRIEVER_SPEED,
    },
    ("generators", "hf"): {
        **HF_PROMPTED,
        "model": Vary(Model("alt")),
        "batch_size": Reason(f"{SPEED_ONLY}: greedy output is identical for any batch size (tests/test_generate.py)"),
        "dtype": Vary("bf16", artefact="load"),
        "quantization": Vary("nf4", artefact="load"),
        "device_map": Vary("cpu", artefact="load"),
        "attn_implementation": Vary("eager", artefact="load"),
        "cache": Vary("dynamic"),
        "prefix_cache": Vary(False),
        "revision": Vary("v2", artefact="load"),
        "gguf_file": Vary("model.Q4_1.gguf", artefact="load"),
        "trust_remote_code": Vary(True, artefact="load"),
    },
    ("generators", "vllm"): {
        **{key: probe for key, probe in HF_PROMPTED.items()},
        "model": Vary(Model("alt"), artefact="engine"),
        "batch_size": Reason(
            "how many finished documents each appended batch holds (what a crash may cost): the "
            "records are the same for any batch size (tests/test_generate_vllm.py)"
        ),
        "dtype": Vary("bf16", artefact="engine"),
        "quantization": Vary("fp8", artefact="engine"),
        "max_model_len": Vary(300, artefact="engine"),
        "max_num_seqs": Vary(4, artefact="engine"),
        "gpu_memory_utilization": Vary(0.5, artefact="engine"),
        "kv_cache_gib": Vary(1.0, artefact="engine"),
        "tensor_parallel_size": Vary(2, artefact="engine"),
        "data_parallel_size": Vary(2, artefact="engine"),
        "prefix_cache": Vary(False, artefact="engine"),
        "enforce_eager": Vary(False, artefact="engine"),
        "cpu_preload": Vary(False, artefact="engine"),
        "engine_options": Vary({"block_size": 32}, artefact="engine"),
        "revision": Vary("v2", artefact="engine"),
        "trust_remote_code": Vary(True, artefact="engine"),
        "gguf_file": Vary("model.Q4_1.gguf", artefact="load"),
    },
    ("generators", "ict"): {
        "num_docs": Vary(3, artefact="stage"),
        "min_words": Vary(25),
        "max_words": Vary(12),
        "remove_sentence": Vary(False),
        "first_sentences": Vary(1),
    },
    ("generators", "qrels"): {
        "split": Vary("test"),
        "num_queries": Vary(3),
        "min_relevance": Vary(2),
        "num_docs": Reason(
            "refused when given (tests/test_generate_qrels.py): the documents are those judged "
            "relevant to the drawn queries"
        ),
    },
    ("tables", "dataset"): {
        "name": Reason("which collection every stage reads: each test reads one (here a 30-query SciFact slice)"),
        "eval_split": Vary("train"),
        "eval_queries": Vary(5),
        "eval_queries_seed": Vary(2, {"eval_queries": 5}),
    },
    ("tables", "stage"): {"seed": Vary(2)},
    ("tables", "judge"): {key: Vary(p.value, p.base, artefact="judge") for key, p in JUDGE_TABLE.items()},
    ("filters", "length"): {"min_tokens": Vary(12), "max_tokens": Vary(8), "count_by": Vary("generated")},
    ("filters", "copied"): {"max_copied": Vary(0.5)},
    ("filters", "scores"): {"keep_top_k": Vary(3)},
    ("filters", "reranker"): {"keep_top_k": Vary(3), "reranker": Vary({"use": "reverse", "model": "m"})},
    ("specs", "filter-reranker"): {
        "use": Vary("reverse"),
        "model": Vary("m2"),
        "batch_size": Vary(4),
        "max_length": Vary(64),
    },
    ("filters", "consistency"): {
        "by": Vary("bm25"),
        "k": Vary(3),
        "depth": Vary(3),
        "retriever": Vary({"use": "bm25", "k1": 3.0, "b": 1.0}),
        "reranker": Vary({"use": "reverse", "model": "m"}),
        "trainer": Vary({"use": "recording-b", "base_model": "b2"}, CONSISTENCY_SELF),
        "negatives": Vary(2, CONSISTENCY_SELF),
    },
    ("miners", "bm25-negatives"): {
        "depth": Vary(3),
        "n_negatives": Vary(2),
        "retriever": Vary({"use": "bm25", "k1": 3.0, "b": 1.0}),
        "teacher": Vary({"use": "reverse", "model": "m"}, TEACHER),
        "teacher_alpha": Vary(0.9, TEACHER),
        "chunk_size": Reason(
            f"{SPEED_ONLY}: each query draws its negatives with its own seeded generator, so "
            "the triples do not depend on how queries are chunked"
        ),
    },
    ("trainers", "cross-encoder"): {
        **TRAINER_SHARED,
        "loss": Vary("lce"),
        "in_batch_negatives": Vary(2, {"loss": "mnrl"}),
    },
    ("trainers", "bi-encoder"): {
        **TRAINER_SHARED,
        "loss": Vary("cached-mnrl"),
        "scale": Vary(5.0),
        "mini_batch_size": Vary(2, {"loss": "cached-mnrl"}),
    },
    ("trainers", "monot5"): {
        **TRAINER_SHARED,
        "true_token": Vary("false"),
        "false_token": Vary("true"),
        "optim": Vary("adafactor"),
    },
    ("rerankers", "cross-encoder"): dict(RERANKER_SHARED),
    ("rerankers", "bi-encoder"): {**RERANKER_SHARED, "cache": Vary(False)},
    ("rerankers", "monot5"): {**RERANKER_SHARED, "true_token": Vary("false"), "false_token": Vary("true")},
    ("stages", "rerank"): RERANK_STAGE,
    ("stages", "estimate"): ESTIMATE_STAGE,
    ("evaluators", "ranx"): {
        "metrics": Vary(["ndcg@3"]),
        "stat_test": Vary("fisher"),
        "max_p": Vary(0.9),
        "baseline": Vary("b"),
        "n_permutations": Vary(200, {"stat_test": "fisher"}),
    },
    ("generators", "dspy"): {**DSPY_SHARED, "num_docs": Vary(3)},
    ("tuners", "dspy"): {
        **DSPY_SHARED,
        **JUDGE_SHARED,
        "num_docs": Vary(2),
        "split": Vary("test"),
        "optimizer": Vary("COPRO"),
        "demo_threshold": Vary(1e9),
        "optimizer_options": Vary({"max_bootstrapped_demos": 1, "max_labeled_demos": 1}),
        "compile_options": Vary({"teacher": None}),
    },
    ("tuners", "cpo"): {
        **JUDGE_SHARED,
        "base_model": Vary(Model("alt")),
        "generator": Vary({"max_doc_tokens": 8}),
        "n_docs": Vary(3),
        "n_candidates": Vary(3),
        "temperature": Vary(0.3),
        "top_p": Vary(0.3),
        "min_margin": Vary(2.0),
        "lora_r": Vary(4),
        "lora_alpha": Vary(4),
        "lora_dropout": Vary(0.2),
        "target_modules": Vary(["q_proj"]),
        "quantization": Vary("nf4"),
        "precision": Vary("bf16"),
        "loss_type": Vary("hinge"),
        "beta": Vary(0.3),
        "cpo_alpha": Vary(0.0),
        "simpo_gamma": Vary(0.7, {"loss_type": "simpo"}),
        "alpha": Vary(0.25),
        "max_steps": Vary(3),
        "epochs": Vary(2.0, {"max_steps": None}),
        "learning_rate": Vary(1e-3),
        "lr_scheduler": Vary("cosine"),
        "batch_size": Vary(4),
        "gradient_accumulation_steps": Vary(2),
        "max_length": Vary(32),
        "gradient_checkpointing": Vary(True),
        "logging_steps": Vary(3),
        "save_steps": Vary(7),
        "eval_docs": Vary(1, artefact="full"),
    },
    ("tuners", "path"): {
        "generator": Vary({"model": "m", "max_new_tokens": 3}),
        "num_docs": Vary(5),
        "n_gold": Vary(4),
        "gold_split": Vary("test"),
        "metric": Vary("map@10"),
        "retrieve": Vary({"use": "bm25s", "k": 100}),
        "filter": Vary({"use": ["length"], "min_tokens": 0}),
        "triples": Vary({"use": "bm25-negatives", "depth": 10}),
        "train": Vary({"use": "recording", "base_model": "b2"}),
        "rerank": Vary({"use": "recording", "model": "@train", "depth": 5}),
        "seed_instructions": Vary(["Ask."]),
        "breadth": Vary(2),
        "rounds": Vary(2),
        "proposer_model": Vary("p2"),
        "proposer_api_base": Vary("http://localhost:1"),
        "proposer_temperature": Vary(0.5),
        "proposer_max_new_tokens": Vary(16),
        "proposer_format": Vary("plain"),
    },
}
"""(kind, name) -> {field: probe or reason}, for every built-in component, and ("stages", stage) for the
options of a stage itself (rerank: probed with the ``cross-encoder`` reranker; estimate: with ``bm25s`` and the
checksum reranker)."""

JUDGE = {"by": "reranker", "reranker": {"use": "recording", "model": "m"}, "retriever": "bm25s", "depth": 8}
"""The tuners' judge in every probe of a tuner (a fake reranker)."""

BASE: dict[tuple[str, str], dict[str, Any]] = {
    ("retrievers", "bm25"): {"k": 8},
    ("retrievers", "bm25s"): {"k": 8},
    ("generators", "hf"): {
        "model": Model("base"),
        "max_new_tokens": 4,
        "num_docs": 2,
        "dtype": "fp32",
    },  # auto may be bf16
    ("generators", "vllm"): {"model": Model("base"), "max_new_tokens": 4, "num_docs": 2},
    ("generators", "ict"): {"num_docs": 2},
    ("generators", "qrels"): {"num_queries": 6},
    ("tables", "dataset"): {"name": "beir:scifact"},
    ("filters", "reranker"): {"reranker": {"use": "recording", "model": "m"}, "keep_top_k": 6},
    ("filters", "consistency"): {
        "by": "reranker",
        "reranker": {"use": "recording", "model": "m"},
        "retriever": "bm25s",
        "depth": 8,
    },
    ("miners", "bm25-negatives"): {"retriever": "bm25s", "depth": 20},
    ("specs", "filter-reranker"): {"use": "recording", "model": "m"},
    ("tables", "judge"): {
        "by": "reranker",
        "reranker": {"use": "recording", "model": "m"},
        "retriever": "bm25s",
        "depth": 8,
    },
    ("trainers", "cross-encoder"): {"loss": "bce"},
    ("trainers", "bi-encoder"): {"batch_size": 2},
    ("trainers", "monot5"): {},
    ("evaluators", "ranx"): {},
    ("generators", "dspy"): {"model": "m", "num_docs": 2},
    ("tuners", "dspy"): {"model": "m", "num_docs": 3, "judge": JUDGE},
    ("tuners", "cpo"): {
        "base_model": Model("base"),
        "generator": {"max_new_tokens": 4, "dtype": "fp32"},
        "n_docs": 2,
        "n_candidates": 2,
        "judge": JUDGE,
        "precision": "fp32",
        "max_steps": 1,
        "batch_size": 2,
        "lora_r": 2,
        "target_modules": ["q_proj", "v_proj"],
        "max_length": 64,
        "save_steps": 0,
    },
    ("tuners", "path"): {
        "generator": {"model": "m"},
        "train": {"use": "recording"},
        "num_docs": 4,
        "n_gold": 3,
        "breadth": 1,
        "rounds": 1,
    },
}
"""Options every probe of a component starts from (cheap settings; fake rerankers and trainers)."""

TRAINER_BASE = {
    "base_model": Model("base"),
    "max_steps": 1,
    "batch_size": 2,
    "gradient_accumulation_steps": 1,
    "max_length": 64,
    "save_steps": 0,
    "precision": "fp32",
    "learning_rate": 1e-4,
    "lr_scheduler": "constant",
    "warmup_ratio": 0.0,
    "weight_decay": 0.0,
    "logging_steps": 1,
    "seed": 1,
}
RERANKER_BASE = {"model": Model("base"), "depth": 4, "dtype": "fp32", "device": "cpu"}


def builtin_fields() -> set[tuple[str, str, str]]:
    """(kind, name, field) of every component the inparsx distribution registers, and ("stages", stage, field)
    of every stage's own options."""
    registry = get_registry()
    stages = {("stages", stage, key) for stage in STAGE_OPTIONS for key in stage_options_model(stage).model_fields}
    stages |= {("tables", "dataset", key) for key in DatasetConfig.model_fields}
    stages |= {("tables", "stage", key) for key in StageKeys.model_fields}
    stages |= {("tables", "judge", key) for key in JudgeOptions.model_fields}
    stages |= {("specs", "filter-reranker", key) for key in TABLE[("specs", "filter-reranker")]}  # probes only
    return stages | {
        (kind, name, key)
        for kind, entries in registry.entries.items()
        for name, entry in entries.items()
        if entry.package == "inparsx"
        for key in entry.cls.Options.model_fields
    }


def coverage_problem(fields: set[tuple[str, str, str]]) -> str | None:
    """``None`` when ``TABLE`` lists exactly ``fields``; else what is missing or stale, with the count covered."""
    listed = {(kind, name, key) for (kind, name), entries in TABLE.items() for key in entries}
    missing, stale = sorted(fields - listed), sorted(listed - fields)
    if not missing and not stale:
        return None
    return (
        f"{len(fields & listed)} of {len(fields)} option fields have a probe or a reason; add a Vary probe (or "
        f"a Reason) to TABLE in {Path(__file__).name} for: {missing}; remove the entries of fields that no "
        f"longer exist: {stale}"
    )


def test_every_option_has_a_probe_or_a_reason():
    fields = builtin_fields()
    assert coverage_problem(fields) is None, coverage_problem(fields)
    probes = sum(isinstance(p, Vary) for entries in TABLE.values() for p in entries.values())
    print(f"{len(fields)} option fields: {probes} probed, {len(fields) - probes} with a reason")


def test_a_new_option_without_a_probe_fails_the_guard():
    fields = builtin_fields()
    problem = coverage_problem(fields | {("filters", "length", "new_knob")})
    assert problem is not None and "('filters', 'length', 'new_knob')" in problem
    assert f"{len(fields)} of {len(fields) + 1} option fields" in problem


PROBES = sorted(
    (kind, name, key)
    for (kind, name), entries in TABLE.items()
    for key, probe in entries.items()
    if isinstance(probe, Vary)
)


# ---------------------------------------------------------------------------------------------------------
# The environment: fake components, tiny models, files, a dataset slice


class RecordingChecksum(ChecksumReranker):
    """The checksum reranker, remembering the options of every instance that loads a model."""

    name: ClassVar[str] = "recording"
    loaded: ClassVar[list[dict]] = []

    def load(self, model: str) -> None:
        RecordingChecksum.loaded.append(self.options.model_dump(exclude={"model"}))
        super().load(model)


class ReverseChecksum(RecordingChecksum):
    """Scores in the opposite order of :class:`RecordingChecksum`."""

    name: ClassVar[str] = "reverse"

    def score(self, queries, documents):
        return [1.0 - s for s in super().score(queries, documents)]


class RecordingTrainer(Trainer):
    """Remembers its name, options and the triples it was given; writes an empty model folder."""

    class Options(Options):
        base_model: str = "base"

    name: ClassVar[str] = "recording"
    calls: ClassVar[list] = []

    def train(self, triples, output_dir, ctx=None):
        RecordingTrainer.calls.append((self.name, self.options.model_dump(), Path(triples).read_text()))
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        return Path(output_dir)


class OtherRecordingTrainer(RecordingTrainer):
    name: ClassVar[str] = "recording-b"


@dataclass
class Env:
    """What the probes share: the dataset slice, tiny models, files and a folder factory."""

    dataset: BeirFolderDataset
    root: Path
    models: dict[str, Path]
    files: dict[str, Path]
    counter: list = field(default_factory=lambda: [0])

    def folder(self) -> Path:
        self.counter[0] += 1
        path = self.root / f"probe-{self.counter[0]}"
        path.mkdir(parents=True)
        return path

    def resolve(self, value: Any, family: str) -> Any:
        if isinstance(value, dict):
            return {key: self.resolve(item, family) for key, item in value.items()}
        if isinstance(value, Model):
            return str(self.models[f"{family}-{value.which}"])
        if isinstance(value, File):
            return str(self.files[value.name])
        return value

    def options(self, kind: str, name: str, values: dict, family: str = "") -> dict:
        return {k: self.resolve(v, family) for k, v in values.items()}


@pytest.fixture(scope="module")
def env(scifact_small: Path, prompts_file: Path, tmp_path_factory) -> Env:
    root = tmp_path_factory.mktemp("guard")
    dataset = BeirFolderDataset(scifact_small, name="beir:scifact")
    texts = [doc.full_text for doc in list(dataset.docs().values())[:200]] + [prompts_file.read_text()]
    tokenizer = train_tokenizer(texts, vocab_size=600)
    tokenizer.chat_template = SIMPLE_CHAT_TEMPLATE
    models = {
        "llama-base": tiny_llama(root / "llama", tokenizer),
        "llama-alt": tiny_llama(root / "llama2", tokenizer, seed=1),
        "bert-base": tiny_bert(root / "bert"),
        "bert-alt": tiny_bert(root / "bert2", seed=1),
        "t5-base": tiny_t5(root / "t5"),
        "t5-alt": tiny_t5(root / "t5b", seed=1),
    }
    files = {"custom.txt": root / "custom.txt", "prompts.yaml": root / "prompts.yaml"}
    files["custom.txt"].write_text("Document: {document}\nQuestion: {query}\n")
    files["prompts.yaml"].write_text(prompts_file.read_text().replace("Relevant Query:", "Search terms:"))
    files["program.json"] = root / "program.json"
    program = build_program("ChainOfThought")
    program.predict.signature = program.predict.signature.with_instructions("Ask like a biologist.")
    program.save(str(files["program.json"]))
    return Env(dataset, root, models, files)


@pytest.fixture(scope="module", autouse=True)
def fakes():
    with registered(
        plugin_module(
            "guard-fakes",
            rerankers=[RecordingChecksum, ReverseChecksum],
            trainers=[RecordingTrainer, OtherRecordingTrainer],
        )
    ) as registry:
        yield registry


def context(
    env: Env, stage: str, table: dict | None = None, run_dir: Path | None = None, components: list | None = None
) -> StageContext:
    data = {"recipe": {"name": "guard"}, "dataset": {"name": "beir:scifact"}, **({stage: table} if table else {})}
    recipe = validate_recipe(data, "guard", "", get_registry())
    ctx = StageContext(recipe, stage, run_dir or env.folder(), components or [], "fp", env.dataset)
    ctx.dir.mkdir(parents=True, exist_ok=True)
    return ctx


def build(kind: str, name: str, options: dict):
    return get_registry().build(kind, name, options)


def rounded(values, digits: int = 5):
    return [round(v, digits) for v in values or []]


# ---------------------------------------------------------------------------------------------------------
# Artefacts: (env, name, options) -> something comparable


def retriever_run(env: Env, name: str, options: dict, artefact: str):
    retriever = build("retrievers", name, options)
    retriever.index(env.dataset)
    queries = {qid: q.text for qid, q in list(env.dataset.queries("test").items())[:5]}
    run = retriever.search(queries, retriever.options.k)
    return {qid: {d: round(s, 4) for d, s in hits.items()} for qid, hits in run.items()}


def generated(env: Env, name: str, options: dict, artefact: str):
    import torch

    from inparsx.generate.hf import model_kwargs
    from inparsx.generate.stage import generate_queries
    from inparsx.models import model_source

    if name == "dspy":
        return dspy_generated(env, options)
    if name == "qrels":
        return qrels_generated(env, options)
    generator = build("generators", name, options)
    if name == "vllm":
        return vllm_generated(env, generator, options, artefact)
    if artefact == "load":
        source = model_source(generator.options.model, generator.options.gguf_file).kwargs()
        return repr(sorted(model_kwargs(generator.options).items())), repr(source)
    ctx = context(env, "generate", {"use": name, **options}, components=[generator]).component_context()
    if artefact == "stage":
        generate_queries(ctx, generator, ctx.dir / "queries.jsonl")
        return [json.loads(line)["doc_id"] for line in (ctx.dir / "queries.jsonl").read_text().splitlines()]
    docs = sorted(env.dataset.docs().values(), key=lambda d: d.doc_id)[:3]
    records = [
        (r.doc_id, r.query, r.prompt_text, rounded(r.log_probs, 3), r.fewshot_examples, r.positive_text, r.extra)
        for batch in generator.generate(docs, ctx)
        for r in batch
    ]
    if name != "hf":
        return records
    model, tokenizer = generator.load(ctx)
    builder = generator.prompt_builder(ctx, tokenizer, generator.max_prompt_tokens_for(model))
    engine = generator._engine(model, tokenizer, builder)
    with torch.inference_mode():
        cache = engine._inputs([builder.build(docs[0]).input_ids]).get("past_key_values")
    return records, type(cache).__name__, len(engine.prefix)


def qrels_generated(env: Env, options: dict):
    """The (query, document) pairs the ``qrels`` generator writes through the stage, in a context whose
    evaluated split is neither train nor test (so that either may be drawn from); or the error it raises."""
    from inparsx.generate.stage import generate_queries

    generator = build("generators", "qrels", options)
    ctx = ComponentContext(env.dataset, env.folder(), eval_split="dev")
    try:
        generate_queries(ctx, generator, ctx.dir / "queries.jsonl")
    except InparsxError as exc:
        return str(exc)
    rows = [json.loads(line) for line in (ctx.dir / "queries.jsonl").read_text().splitlines()]
    return [(r["extra"]["qid"], r["doc_id"]) for r in rows]


def dataset_seen(env: Env, name: str, options: dict, artefact: str):
    """The evaluated split's qrels as the stages see them (``[dataset]`` options applied); for the keys every
    stage table takes (``stage``), the documents an ICT generate stage samples with them."""
    from inparsx.pipeline import recipe_dataset

    if name == "stage":
        from inparsx.generate.stage import generate_queries

        generator = build("generators", "ict", {"num_docs": 3})
        ctx = context(env, "generate", {"use": "ict", "num_docs": 3, **options}, components=[generator])
        generate_queries(ctx.component_context(), generator, ctx.dir / "queries.jsonl")
        return [json.loads(line)["doc_id"] for line in (ctx.dir / "queries.jsonl").read_text().splitlines()]

    recipe = validate_recipe({"recipe": {"name": "guard"}, "dataset": options}, "guard", "", get_registry())
    dataset = recipe_dataset(recipe, env.dataset)
    return sorted(dataset.qrels(recipe.dataset.eval_split).items())


def vllm_generated(env: Env, generator, options: dict, artefact: str):
    """What the ``vllm`` generator hands vLLM: each engine's ``vllm.LLM`` arguments and environment
    (``engine``), the model source (``load``), or the records it writes and the requests (prompt token ids,
    ``SamplingParams`` arguments) it sends, from :class:`~inparsx.testing.fakes.ScriptedEngine` in place of vLLM."""
    import inparsx.generate.vllm_engine as engine
    from inparsx.generate.stage import generate_queries
    from inparsx.models import model_source
    from inparsx.testing.fakes import ScriptedEngine

    if artefact == "load":
        return repr(model_source(generator.options.model, generator.options.gguf_file).kwargs())
    ctx = context(env, "generate", {"use": "vllm", **options}, components=[generator]).component_context()
    if artefact == "engine":
        folder, _, config = generator.load(ctx)
        with pytest.MonkeyPatch.context() as patch:  # the same libraries found on every machine
            patch.setattr(
                engine, "cpu_preload", lambda: (["/opt/lib/libtcmalloc_minimal.so.4", "/opt/lib/libiomp5.so"], [])
            )
            return [(repr(sorted(c.llm.items())), c.env) for c in generator.engine_configs(folder, config, 100, 1)]
    fake = ScriptedEngine()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "acquire", lambda configs: fake.start())
        patch.setattr(engine, "release", lambda started: None)
        if artefact == "stage":
            generate_queries(ctx, generator, ctx.dir / "queries.jsonl")
            return [json.loads(line)["doc_id"] for line in (ctx.dir / "queries.jsonl").read_text().splitlines()]
        docs = sorted(env.dataset.docs().values(), key=lambda d: d.doc_id)[:3]
        records = [
            (r.doc_id, r.query, r.prompt_text, rounded(r.log_probs, 3), r.fewshot_examples, r.extra)
            for batch in generator.generate(docs, ctx)
            for r in batch
        ]
    return records, [(r.prompt, sorted(r.params.items())) for r in fake.requests]


DSPY_ANSWERS = [
    {
        "reasoning": f"It studies cells, take {i}.",
        "query": f"What do cells do, take {i}?",
        "proposed_instruction": f"Ask what a biologist would ask, take {i}.",
        "proposed_prefix_for_output_field": "Query:",
    }
    for i in range(400)
]


@contextmanager
def scripted_dspy():
    """Every DSPy LM of the ``dspy`` generator (also the ``dspy`` tuner's and ``path``'s proposer) is built for
    real, its construction recorded (model name, arguments, engine budget, and the local model's loading
    options instead of loading it), then replaced by DSPy's DummyLM, which records the prompts it gets."""
    from dspy.utils import DummyLM

    import inparsx.generate.hf as hf

    built: list = []
    lm = DummyLM(list(DSPY_ANSWERS))
    real = DSPyGenerator.lm

    def lm_of(self, ctx):
        made = real(self, ctx)
        built.append((made.model, sorted(made.kwargs.items()), self._engine and self._engine.max_new_tokens))
        return lm

    def load(path, options):
        from types import SimpleNamespace

        import torch

        built.append(("load", path, options.dtype, options.quantization))
        return SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32), None  # what say_what_runs reads

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DSPyGenerator, "lm", lm_of)
        patch.setattr(hf, "load_model", load)
        patch.setenv("GUARD_KEY", "guard-key")
        yield built, lm


def prompts(lm) -> list:
    return [entry["messages"] for entry in lm.history]


def dspy_generated(env: Env, options: dict):
    from inparsx.generate.stage import generate_queries

    generator = build("generators", "dspy", options)
    ctx = context(env, "generate", {"use": "dspy", **options}, components=[generator]).component_context()
    with scripted_dspy() as (built, lm):
        generate_queries(ctx, generator, ctx.dir / "queries.jsonl")
    rows = [json.loads(line) for line in (ctx.dir / "queries.jsonl").read_text().splitlines()]
    return [(r["doc_id"], r["query"], r["generator"], r["extra"]) for r in rows], built, prompts(lm)


def synthetic_records(env: Env) -> list[SyntheticQuery]:
    """Real test queries as synthetic queries of a judged document, with made-up log-probabilities, plus
    copies of document text."""
    qrels, queries = env.dataset.qrels("test"), env.dataset.queries("test")
    records = []
    for i, qid in enumerate(list(queries)[:12]):
        doc_id = sorted(qrels[qid])[0]
        text = queries[qid].text if i % 4 else " ".join(env.dataset.docs()[doc_id].text.split()[:8])
        log_probs = [-(1 + zlib.crc32(f"{qid}{k}".encode()) % 7) / 3 for k in range(3 + i % 5)]
        records.append(SyntheticQuery(query_id=f"s{qid}", doc_id=doc_id, query=text, log_probs=log_probs))
    return records


def filtered(env: Env, name: str, options: dict, artefact: str):
    RecordingChecksum.loaded.clear()
    RecordingTrainer.calls.clear()
    ctx = context(env, "filter").component_context()
    decisions = build("filters", name, options).apply(synthetic_records(env), ctx)
    written = {}
    for path in sorted(ctx.dir.rglob("*.jsonl")):
        written[str(path.relative_to(ctx.dir))] = path.read_text().replace(str(ctx.dir), "<dir>")
    return (
        [(d.keep, d.reason, d.score) for d in decisions],
        list(RecordingChecksum.loaded),
        [(n, o, t.replace(str(ctx.dir), "<dir>")) for n, o, t in RecordingTrainer.calls],
        written,
    )


def mined(env: Env, name: str, options: dict, artefact: str):
    RecordingChecksum.loaded.clear()
    miner = build("miners", name, options)
    triples = [
        (t.query_id, t.neg_ids, t.pos_score, t.neg_scores)
        for t in miner.mine(synthetic_records(env), context(env, "triples").component_context())
    ]
    return triples, list(RecordingChecksum.loaded)


def triples_file(env: Env) -> Path:
    path = env.root / "triples.jsonl"
    if not path.exists():
        docs = sorted(env.dataset.docs().values(), key=lambda d: d.doc_id)
        rows = [
            {
                "query_id": f"q{i}",
                "query": f"question {i} about {docs[i].title[:40]}",
                "pos_id": docs[i].doc_id,
                "pos_text": docs[i].full_text,
                "neg_ids": [docs[i + 20].doc_id, docs[i + 40].doc_id],
                "neg_texts": [docs[i + 20].full_text, docs[i + 40].full_text],
            }
            for i in range(8)
        ]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def trained(env: Env, name: str, options: dict, artefact: str):
    trainer = build("trainers", name, options)
    out = env.folder() / "model"
    if artefact == "train":
        trainer.train(triples_file(env), out)
        return sorted(p.name for p in out.iterdir())
    hf, data, base_model, seed, counts = trainer.prepare(triples_file(env), out)
    args = {k: v for k, v in hf.args.to_dict().items() if "dir" not in k}
    model = hf.model
    weights = round(float(sum(p.detach().double().sum() for p in model.parameters())), 4)
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    loss = getattr(hf, "loss", None)
    loss_config = (type(loss).__name__, repr(loss.get_config_dict())) if hasattr(loss, "get_config_dict") else None
    rows = [hf.train_dataset[i] for i in range(min(2, len(hf.train_dataset)))]
    batch = hf.data_collator(rows) if name == "monot5" else None
    collated = {k: v.tolist() for k, v in batch.items()} if batch is not None else None
    length = getattr(model, "max_seq_length", None) or getattr(model, "max_length", None)
    return args, hf.train_dataset.to_dict(), weights, trainable, loss_config, collated, length


def first_stage_runs(env: Env, run_dir: Path) -> None:
    from inparsx.io import write_trec_run

    docids = sorted(env.dataset.docs())
    for stage, offset in (("retrieve", 0), ("other", 50)):
        run = {
            qid: {docids[(offset + int(qid) * 7 + i) % len(docids)]: 20.0 - i for i in range(6)}
            for qid in list(env.dataset.queries("test"))[:3]
        }
        write_trec_run(run_dir / stage / "run.trec", run)


def reranked(env: Env, name: str, options: dict, artefact: str):
    from inparsx.rerank.stage import run_stage

    run_dir = env.folder()
    first_stage_runs(env, run_dir)
    cache = run_dir / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INPARSX_CACHE", str(cache))  # the bi-encoder's embedding cache, fresh for each probe
        ctx = context(env, "rerank", {"use": name, **options}, run_dir)
        ctx.components = [get_registry().get("rerankers", name)(ctx.recipe.stages["rerank"].components[0][1])]
        run_stage(ctx)
    folder = run_dir / "rerank"
    written = {
        str(p.relative_to(folder)): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.suffix in (".trec", ".json") and p.name != "summary.json"
    }
    return written, sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def evaluated(env: Env, name: str, options: dict, artefact: str):
    from inparsx.evaluate.evaluation import evaluate_runs

    qrels = env.dataset.qrels("test")
    docids = sorted(env.dataset.docs())

    def run(salt: str) -> dict:
        out = {}
        for qid, judged in qrels.items():
            pool = sorted(set(docids[:15]) | set(judged), key=lambda d: zlib.crc32(f"{salt}{qid}{d}".encode()))
            out[qid] = {d: float(len(pool) - i) for i, d in enumerate(pool)}
        return out

    evaluation = evaluate_runs(build("evaluators", name, options), qrels, {"a": run("x"), "b": run("y")})
    significance = {
        run: {m: (round(t["p_value"], 6), t["significant"]) for m, t in by.items()}
        for run, by in evaluation.significance.items()
    }
    return evaluation.means, significance


class StopBeforeTraining(Exception):
    """Raised by the recording CPO trainer once it has what the probe compares."""


def jsonl_texts(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text().replace(str(folder), "<dir>") for p in sorted(folder.glob("*.jsonl"))}


CPO_CANDIDATES: dict[str, str] = {}
"""``candidates.jsonl`` of the ``cpo`` probes by the ``hf`` options that sampled them."""


def cpo_tuned(env: Env, tuner, ctx: ComponentContext, artefact: str):
    """What the ``cpo`` tuner hands TRL (CPOConfig, LoraConfig, the base model's weights and layer types, the
    pairs), and the candidates and pairs it wrote; ``full``: the files of a whole (one-step) run."""
    import trl.experimental.cpo as cpo

    if artefact == "full":
        tuner.tune(ctx)
        return sorted(p.name for p in ctx.dir.iterdir())
    seen: dict = {}

    def recording(model, args, train_dataset, processing_class, peft_config, callbacks):
        seen["args"] = {k: v for k, v in args.to_dict().items() if "dir" not in k}
        seen["lora"] = repr(sorted((k, v) for k, v in peft_config.to_dict().items() if k not in ("revision",)))
        seen["model"] = (
            round(float(sum(p.detach().double().sum() for p in model.parameters())), 4),
            sorted({type(m).__name__ for m in model.modules()}),
            str(next(model.parameters()).dtype),
        )
        seen["rows"] = train_dataset.to_dict()
        raise StopBeforeTraining

    sampling = json.dumps(tuner.options.sampler().options, sort_keys=True)
    candidates = ctx.dir / "candidates.jsonl"
    if sampling in CPO_CANDIDATES:  # the tuner resumes from its candidates file: sample once per sampling setting
        candidates.write_text(CPO_CANDIDATES[sampling])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cpo, "CPOTrainer", recording)
        try:
            tuner.tune(ctx)
        except StopBeforeTraining:
            pass
        except InparsxError as exc:
            seen["error"] = str(exc).replace(str(ctx.dir), "<dir>")
    CPO_CANDIDATES.setdefault(sampling, candidates.read_text())
    return seen, jsonl_texts(ctx.dir)


def dspy_tuned(env: Env, tuner, ctx: ComponentContext, artefact: str):
    """The compiled program the ``dspy`` tuner saves, the keyword arguments its optimiser's ``compile`` gets,
    the LM it builds and the prompts that LM receives."""
    import dspy

    calls = []
    optimizer = getattr(dspy, tuner.options.optimizer)
    real = optimizer.compile

    def compile(self, student, **kwargs):
        calls.append(
            (
                type(self).__name__,
                sorted((k, repr(v)) for k, v in kwargs.items() if k != "trainset"),
                [e.toDict() for e in kwargs["trainset"]],
            )
        )
        return real(self, student, **kwargs)

    with scripted_dspy() as (built, lm), pytest.MonkeyPatch.context() as patch:
        patch.setattr(optimizer, "compile", compile)
        path = tuner.tune(ctx)
    return path.read_text(), calls, built, prompts(lm)


def path_tuned(env: Env, tuner, ctx: ComponentContext, artefact: str):
    """What ``path`` runs: each candidate's inner recipe and gold queries (the inner run itself is replaced by
    a metrics file scored by a checksum of the instruction), the proposer LM and its prompts, the search's
    files."""
    import inparsx.pipeline as pipeline
    from inparsx.tune.path import GOLD_SPLIT

    inner = []

    def run_recipe(recipe, folder, dataset=None, check=True, report=True):
        inner.append((recipe.filled(), sorted(dataset.queries(GOLD_SPLIT))))
        metric = recipe.stages["evaluate"].components[0][1].metrics[0]
        score = zlib.crc32((folder / "instruction.txt").read_bytes()) / 2**32
        (folder / "evaluate").mkdir(parents=True, exist_ok=True)
        (folder / "evaluate" / "metrics.json").write_text(json.dumps({"rerank": {metric: score}}))
        return folder

    with scripted_dspy() as (built, lm), pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "run_recipe", run_recipe)
        tuner.tune(ctx)
    files = {name: (ctx.dir / name).read_text() for name in ("path.json", "proposals.json", "instruction.txt")}
    return inner, built, prompts(lm), files


def tuned(env: Env, name: str, options: dict, artefact: str):
    from inparsx.tune.judge import judge_records

    RecordingChecksum.loaded.clear()
    tuner = build("tuners", name, options)
    ctx = ComponentContext(env.dataset, env.folder())
    if artefact == "judge":
        scores = judge_records(synthetic_records(env), tuner.options.judge, ctx)
        return {k: round(v, 6) for k, v in scores.items()}, list(RecordingChecksum.loaded)
    return {"cpo": cpo_tuned, "dspy": dspy_tuned, "path": path_tuned}[name](env, tuner, ctx, artefact)


def estimated(env: Env, options: dict, artefact: str):
    """The estimate stage on synthetic records (half with a ``positive_text``) of the slice, reranked by the
    checksum reranker; ``holdout``: the documents it holds out of training."""
    from inparsx.estimate.holdout import Holdout
    from inparsx.estimate.stage import HELDOUT, run_stage

    if artefact == "holdout":
        return Holdout(env.dataset, options["docs"], seed=1).doc_ids
    run_dir = env.folder()
    records = synthetic_records(env)
    for i, record in enumerate(records):
        if i % 2 == 0:
            record.positive_text = " ".join(env.dataset.docs()[record.doc_id].text.split()[8:])
    (run_dir / "generate").mkdir()
    (run_dir / "generate" / HELDOUT).write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records))
    data = {
        "recipe": {"name": "guard"},
        "dataset": {"name": "beir:scifact"},
        "generate": {"use": "ict"},
        "rerank": {"use": "recording", "model": "m", "zero_shot_model": "m2", "depth": 4},
        "estimate": {"use": "bm25s", "k": 8, **options},
    }
    recipe = validate_recipe(data, "guard", "", get_registry())
    retriever = get_registry().get("retrievers", "bm25s")(recipe.stages["estimate"].components[0][1])
    ctx = StageContext(recipe, "estimate", run_dir, [retriever], "fp", env.dataset)
    ctx.dir.mkdir()
    run_stage(ctx)
    return (ctx.dir / "metrics.json").read_text(), (ctx.dir / "runs" / "retrieve.trec").read_text()


ARTEFACTS: dict[str, Callable] = {
    "retrievers": retriever_run,
    "generators": generated,
    "filters": filtered,
    "miners": mined,
    "trainers": trained,
    "rerankers": reranked,
    "evaluators": evaluated,
    "tuners": tuned,
    "tables": dataset_seen,
    "stages": lambda env, stage, options, which: (
        estimated(env, options, which) if stage == "estimate" else reranked(env, "cross-encoder", options, which)
    ),
}
FAMILY = {
    ("generators", "hf"): "llama",
    ("generators", "vllm"): "llama",
    ("tuners", "cpo"): "llama",
    ("trainers", "monot5"): "t5",
    ("rerankers", "monot5"): "t5",
}


def spec_probe(env: Env, name: str, options: dict, which: str):
    """``specs/filter-reranker``: the ``reranker`` filter's decisions with ``options`` as its reranker's table."""
    return filtered(env, "reranker", {**BASE[("filters", "reranker")], "reranker": options}, which)


def judge_probe(env: Env, name: str, options: dict, which: str):
    """``tables/judge``: the ``dspy`` tuner's judge scores with ``options`` as its ``[tune.judge]`` table."""
    return tuned(env, "dspy", {**BASE[("tuners", "dspy")], "judge": options}, "judge")


ARTEFACTS["specs"] = spec_probe
ARTEFACTS["tables"] = lambda env, name, options, which: (
    judge_probe(env, name, options, which) if name == "judge" else dataset_seen(env, name, options, which)
)


def base_options(kind: str, name: str) -> dict:
    if kind == "trainers":
        return {**TRAINER_BASE, **BASE[(kind, name)]}
    if (kind, name) == ("stages", "estimate"):
        return {"docs": 4}
    if kind in ("rerankers", "stages"):
        return dict(RERANKER_BASE)
    return dict(BASE.get((kind, name), {}))


_SEEN: dict[str, Any] = {}


def artefact(env: Env, kind: str, name: str, values: dict, which: str):
    options = env.options(kind, name, values, FAMILY.get((kind, name), "bert"))
    key = json.dumps([kind, name, which, options], sort_keys=True, default=str)
    if key not in _SEEN:
        _SEEN[key] = ARTEFACTS[kind](env, name, options, which)
    return _SEEN[key]


@pytest.mark.parametrize("kind,name,key", PROBES, ids=["/".join(p) for p in PROBES])
def test_option_changes_what_is_computed(env, kind, name, key):
    probe = TABLE[(kind, name)][key]
    base = {**base_options(kind, name), **probe.base}
    before = artefact(env, kind, name, base, probe.artefact)
    after = artefact(env, kind, name, {**base, key: probe.value}, probe.artefact)
    assert before != after, f"{kind} {name!r}: setting {key} = {probe.value!r} changed nothing downstream"
