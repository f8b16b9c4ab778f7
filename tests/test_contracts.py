"""The built-in components pass the contract tests that plugin authors subclass (inparsx.testing.contracts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inparsx.filter.rules import CopiedFilter, LengthFilter, ScoresFilter
from inparsx.generate.hf import HFGenerator
from inparsx.generate.ict import ICTGenerator
from inparsx.generate.qrels import QrelsGenerator
from inparsx.records import SyntheticQuery
from inparsx.rerank.bi_encoder import BiEncoderReranker
from inparsx.rerank.cross_encoder import CrossEncoderReranker
from inparsx.rerank.monot5 import MonoT5Reranker
from inparsx.testing import tiny_bert, tiny_llama, tiny_t5
from inparsx.testing.contracts import (FilterContract, GeneratorContract, MinerContract, RerankerContract,
                                       TrainerContract)
from inparsx.train.bi_encoder import BiEncoderTrainer
from inparsx.train.cross_encoder import CrossEncoderTrainer
from inparsx.train.monot5 import MonoT5Trainer
from inparsx.triples.bm25_negatives import Bm25Negatives

FEW_STEPS = {"max_steps": 1, "batch_size": 4, "max_length": 64, "precision": "fp32"}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("contract-models")
    return {"llama": str(tiny_llama(root / "llama")), "bert": str(tiny_bert(root / "bert")),
            "t5": str(tiny_t5(root / "t5"))}


@pytest.fixture(autouse=True)
def _models(request, models):
    request.instance.models = models


class TestICT(GeneratorContract):
    def make_generator(self):
        return ICTGenerator(ICTGenerator.Options(min_words=3))


class TestQrels(GeneratorContract):
    def make_generator(self):
        generator = QrelsGenerator(QrelsGenerator.Options())
        generator.batch_size = 2
        return generator


class TestHF(GeneratorContract):
    def make_generator(self):
        return HFGenerator(HFGenerator.Options(model=self.models["llama"], prompt="doc2query", batch_size=4,
                                               max_new_tokens=3, dtype="fp32"))


class TestLength(FilterContract):
    def make_filter(self):
        return LengthFilter(LengthFilter.Options(min_tokens=3))


class TestCopied(FilterContract):
    def make_filter(self):
        return CopiedFilter(CopiedFilter.Options(max_copied=0.5))


class TestScores(FilterContract):
    def make_filter(self):
        return ScoresFilter(ScoresFilter.Options(keep_top_k=10))

    def make_records(self, ctx):
        return [SyntheticQuery(r.query_id, r.doc_id, r.query, score=-0.1 * i)
                for i, r in enumerate(self.title_records(ctx))]


class TestBm25Negatives(MinerContract):
    def make_miner(self):
        return Bm25Negatives(Bm25Negatives.Options(depth=10, n_negatives=2, retriever="bm25s"))


class TestCrossEncoderReranker(RerankerContract):
    def make_reranker(self):
        return CrossEncoderReranker(CrossEncoderReranker.Options(dtype="fp32", batch_size=4))

    def model(self, tmp_path: Path) -> str:
        return self.models["bert"]


class TestBiEncoderReranker(TestCrossEncoderReranker):
    def make_reranker(self):
        return BiEncoderReranker(BiEncoderReranker.Options(dtype="fp32", cache=False))


class TestMonoT5Reranker(TestCrossEncoderReranker):
    def make_reranker(self):
        return MonoT5Reranker(MonoT5Reranker.Options(dtype="fp32", batch_size=4))

    def model(self, tmp_path: Path) -> str:
        return self.models["t5"]


class TestCrossEncoderTrainer(TrainerContract):
    def make_trainer(self):
        return CrossEncoderTrainer(CrossEncoderTrainer.Options(base_model=self.models["bert"], **FEW_STEPS))

    def make_reranker(self):
        return CrossEncoderReranker(CrossEncoderReranker.Options(dtype="fp32"))


class TestBiEncoderTrainer(TrainerContract):
    def make_trainer(self):
        return BiEncoderTrainer(BiEncoderTrainer.Options(base_model=self.models["bert"], **FEW_STEPS))

    def make_reranker(self):
        return BiEncoderReranker(BiEncoderReranker.Options(dtype="fp32", cache=False))


class TestMonoT5Trainer(TrainerContract):
    def make_trainer(self):
        return MonoT5Trainer(MonoT5Trainer.Options(base_model=self.models["t5"], **FEW_STEPS))

    def make_reranker(self):
        return MonoT5Reranker(MonoT5Reranker.Options(dtype="fp32"))
