"""The built-in components pass the contract tests that plugin authors subclass (inparsx.testing.contracts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inparsx.evaluate.ranx_evaluator import RanxEvaluator
from inparsx.filter.rules import CopiedFilter, LengthFilter, ScoresFilter
from inparsx.generate.hf import HFGenerator
from inparsx.generate.ict import ICTGenerator
from inparsx.generate.qrels import QrelsGenerator
from inparsx.records import SyntheticQuery
from inparsx.rerank.bi_encoder import BiEncoderReranker
from inparsx.rerank.cross_encoder import CrossEncoderReranker
from inparsx.rerank.monot5 import MonoT5Reranker
from inparsx.retrieve.bm25s_retriever import Bm25s
from inparsx.retrieve.lucene import LuceneBM25
from inparsx.testing import tiny_bert, tiny_llama, tiny_t5
from inparsx.testing.contracts import (
    EvaluatorContract,
    FilterContract,
    GeneratorContract,
    MinerContract,
    RerankerContract,
    RetrieverContract,
    TrainerContract,
    TunerContract,
)
from inparsx.train.bi_encoder import BiEncoderTrainer
from inparsx.train.cross_encoder import CrossEncoderTrainer
from inparsx.train.monot5 import MonoT5Trainer
from inparsx.triples.bm25_negatives import Bm25Negatives

NEEDS_MODELS = {
    "TestHF",
    "TestCrossEncoderReranker",
    "TestBiEncoderReranker",
    "TestMonoT5Reranker",
    "TestCrossEncoderTrainer",
    "TestBiEncoderTrainer",
    "TestMonoT5Trainer",
}
"""The test classes that build tiny models (the others run without building any)."""

FEW_STEPS = {"max_steps": 1, "batch_size": 4, "max_length": 64, "precision": "fp32"}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("contract-models")
    return {
        "llama": str(tiny_llama(root / "llama")),
        "bert": str(tiny_bert(root / "bert")),
        "t5": str(tiny_t5(root / "t5")),
    }


@pytest.fixture(autouse=True)
def _models(request):
    if request.instance is not None and request.cls.__name__ in NEEDS_MODELS:
        request.instance.models = request.getfixturevalue("models")


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
        return HFGenerator(
            HFGenerator.Options(
                model=self.models["llama"], prompt="doc2query", batch_size=4, max_new_tokens=3, dtype="fp32"
            )
        )


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
        return [
            SyntheticQuery(r.query_id, r.doc_id, r.query, score=-0.1 * i) for i, r in enumerate(self.title_records(ctx))
        ]


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


class TestBm25sRetriever(RetrieverContract):
    def make_retriever(self):
        return Bm25s(Bm25s.Options())


class TestLuceneRetriever(RetrieverContract):
    def make_retriever(self):
        return LuceneBM25(LuceneBM25.Options())


class TestRanxEvaluator(EvaluatorContract):
    def make_evaluator(self):
        return RanxEvaluator(RanxEvaluator.Options())


class TestFisherRanxEvaluator(EvaluatorContract):
    metrics = ("ndcg@10", "map")

    def make_evaluator(self):
        return RanxEvaluator(RanxEvaluator.Options(stat_test="fisher", n_permutations=200))


DSPY_ANSWER = {"reasoning": "It studies cells.", "query": "What do cells do?"}


class TestDSPyTuner(TunerContract):
    """The ``dspy`` tuner with DSPy's DummyLM as its model (no model is loaded)."""

    @pytest.fixture(autouse=True)
    def _scripted(self, monkeypatch):
        from dspy.utils import DummyLM

        from inparsx.generate.dspy_generator import DSPyGenerator

        monkeypatch.setattr(DSPyGenerator, "lm", lambda generator, ctx: DummyLM([DSPY_ANSWER] * 200))

    def make_tuner(self):
        from inparsx.tune.dspy_tuner import DSPyTuner

        return DSPyTuner(
            DSPyTuner.Options(
                model="scripted",
                num_docs=4,
                judge="consistency",
                retriever="bm25s",
                depth=10,
                optimizer_options={"max_bootstrapped_demos": 1, "max_labeled_demos": 1},
            )
        )


# Deliberately broken components: each contract must fail them, or it checks nothing.


class TooDeep(Bm25s):
    """Returns one document more than asked, and a document outside the corpus."""

    def search(self, queries, k):
        return {qid: {**ranking, "not-a-doc": 0.1} for qid, ranking in super().search(queries, k).items()}


class Forgetful(Bm25s):
    """Leaves out the queries that match nothing, and searches before indexing without a word."""

    def search(self, queries, k):
        if self._model is None:
            return {}
        return {qid: ranking for qid, ranking in super().search(queries, k).items() if ranking}


class Drifting(Bm25s):
    """Scores drift from one call to the next."""

    calls = 0

    def search(self, queries, k):
        Drifting.calls += 1
        return {qid: {d: s + Drifting.calls for d, s in r.items()} for qid, r in super().search(queries, k).items()}


class Unbounded(RanxEvaluator):
    """Sums instead of averaging, and forgets the empty run."""

    def evaluate(self, qrels, runs, metrics):
        means = super().evaluate(qrels, {k: v for k, v in runs.items() if v}, metrics)
        return {name: {m: v * len(qrels) for m, v in values.items()} for name, values in means.items()}


class Misaligned(RanxEvaluator):
    """Per-query arrays in another order than its qids, one score short."""

    def per_query(self, qrels, runs, metrics):
        qids, scores = super().per_query(qrels, runs, metrics)
        return qids, {run: {m: a[::-1][:-1] for m, a in by.items()} for run, by in scores.items()}


class Peeking(TunerContract):
    """A tuner that reads the evaluated split's qrels, swallows the refusal, and writes its output elsewhere."""

    def make_tuner(self):
        from inparsx.tune.base import INSTRUCTION, Tuner

        class Peeker(Tuner):
            name = "peeker"
            output = INSTRUCTION

            def tune(self, ctx):
                try:
                    ctx.dataset.qrels(ctx.eval_split)
                except Exception:
                    pass
                (ctx.dir / self.output).write_text(f"{id(self)}")  # another text every run
                return ctx.dir / self.output

        return Peeker(Peeker.Options())


class Misplaced(TunerContract):
    def make_tuner(self):
        from inparsx.tune.base import Tuner

        class Elsewhere(Tuner):
            name = "elsewhere"

            def tune(self, ctx):
                (ctx.dir / "other").mkdir()
                return ctx.dir / "other"

        return Elsewhere(Elsewhere.Options())


def _case(contract, **methods):
    return type("Case", (contract,), methods)()


@pytest.mark.parametrize(
    "broken, test",
    [
        (TooDeep, "test_a_run_of_at_most_k_corpus_documents_per_query"),
        (Forgetful, "test_a_run_of_at_most_k_corpus_documents_per_query"),
        (Forgetful, "test_search_before_index_is_an_error"),
        (Drifting, "test_the_same_run_every_time_and_from_a_cached_index"),
    ],
)
def test_the_retriever_contract_fails_broken_retrievers(broken, test, tmp_path):
    case = _case(RetrieverContract, make_retriever=lambda self: broken(broken.Options()))
    with pytest.raises(AssertionError):
        getattr(case, test)(tmp_path)


@pytest.mark.parametrize(
    "broken, test",
    [
        (Unbounded, "test_values_for_the_runs_and_metrics_asked"),
        (Misaligned, "test_per_query_scores_average_to_the_values"),
    ],
)
def test_the_evaluator_contract_fails_broken_evaluators(broken, test, tmp_path):
    case = _case(EvaluatorContract, make_evaluator=lambda self: broken(broken.Options()))
    with pytest.raises(AssertionError):
        getattr(case, test)(tmp_path)


@pytest.mark.parametrize(
    "case, test",
    [
        (Peeking, "test_writes_its_output_and_never_asks_for_the_evaluated_split"),
        (Peeking, "test_the_same_seed_writes_the_same_output"),
        (Misplaced, "test_writes_its_output_and_never_asks_for_the_evaluated_split"),
    ],
)
def test_the_tuner_contract_fails_broken_tuners(case, test, tmp_path):
    with pytest.raises(AssertionError):
        getattr(case(), test)(tmp_path)
