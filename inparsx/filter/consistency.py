"""``consistency``: keep a synthetic query only if its source document ranks within the top ``k`` for it.

Three rankers (option ``by``):

- ``bm25``: the first-stage retriever over the whole corpus (a cheap round trip).
- ``reranker``: a pretrained reranker over the BM25 top ``depth`` plus the source document (InPars-light's
  consistency checking; Boytsov et al., TMLR 2024).
- ``self``: a model trained on the synthetic data itself, then used to rank the same candidates
  (Promptagator's round-trip filtering; Dai et al., ICLR 2023, keep if the source is the top-1). It is
  trained with a registered trainer (``[filter.consistency.trainer]``, default ``bi-encoder``) on every
  record's (query, source document) with BM25 negatives (the ``bm25-negatives`` miner), under
  ``<stage dir>/consistency-self/``.

The source document is always among the reranked candidates, so ``reranker`` and ``self`` ask whether the
model prefers it to BM25's best competitors. Scores are resumable (``consistency-scores.jsonl``); the
decision's score is the source document's rank (``None`` when BM25 did not retrieve it in the top ``depth``).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from inparsx.artifacts import MODEL, TRIPLES, triple_to_dict
from inparsx.filter.base import Decision, Filter
from inparsx.filter.rules import MISSING_SOURCE
from inparsx.io import ResumableJsonl, write_jsonl
from inparsx.plugins import Options
from inparsx.records import Run, SyntheticQuery
from inparsx.rerank.fusion import ranked
from inparsx.rerank.reranking import rerank_run
from inparsx.rerank.spec import RerankerSpec
from inparsx.retrieval import open_spec
from inparsx.scoring import load_scorer, records_digest, scorer_models
from inparsx.specs import MinerSpec, RetrieverSpec, TrainerSpec, default_retriever, fold_legacy

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.models import ModelRef


class ConsistencyOptions(Options):
    """``consistency`` options.

    ``by``: ``bm25`` | ``reranker`` | ``self`` (module docstring). ``k``: the source must rank within the top
    ``k`` (default 1). ``depth``: BM25 candidates per query (at least ``k``). ``retriever``
    (``[filter.consistency.retriever]``): the registered retriever for BM25 and its options (default ``bm25``,
    Lucene; not ``k``: the search depth is ``depth``). ``reranker`` (``[filter.consistency.reranker]``): for
    ``by = "reranker"``, the reranker, its ``model`` (required) and options (default reranker
    ``cross-encoder``); for ``by = "self"``, the reranker that loads the self-trained model (no ``model``;
    default: the reranker named like the trainer). ``trainer`` (``[filter.consistency.trainer]``): the trainer
    for ``by = "self"`` and its options, e.g. ``{use = "bi-encoder", base_model = "...", epochs = 1}``.
    ``negatives``: BM25 negatives per query for that training (all of them reach the trainer; a different
    ``num_negatives`` of the trainer is refused). The rerank stage's keys are refused in the reranker.

    The old spelling (``retriever_options``; ``reranker = "<name>"``, ``model``, ``batch_size``,
    ``reranker_options``; ``trainer = "<name>"``, ``trainer_options``, and ``model`` as the trainer's base model
    with ``by = "self"``) is still read, with a deprecation warning.
    """

    legacy_keys: ClassVar[tuple[str, ...]] = (
        "retriever_options",
        "model",
        "batch_size",
        "reranker_options",
        "trainer_options",
    )
    by: Literal["bm25", "reranker", "self"] = "bm25"
    k: int = Field(1, ge=1)
    depth: int = Field(100, ge=1)
    retriever: RetrieverSpec = Field(default_factory=default_retriever)
    reranker: RerankerSpec | None = None
    trainer: TrainerSpec = Field(default_factory=lambda: TrainerSpec.model_construct(use="bi-encoder", options={}))
    negatives: int = Field(1, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _old_spelling(cls, data: Any) -> Any:
        """The old flat keys -> the ``retriever``, ``reranker`` and ``trainer`` tables (``model`` is the
        reranker's checkpoint with ``by = "reranker"``, the trainer's base model with ``by = "self"``)."""
        if not isinstance(data, dict):
            return data
        data = fold_legacy(
            data,
            "retriever",
            {"retriever": "use", "retriever_options": "*"},
            "[filter.consistency.retriever]",
            defaults={"use": "bm25"},
        )
        own_model = {"model": "base_model"} if data.get("by") == "self" else {}  # the trainer's base model
        data = fold_legacy(
            data,
            "trainer",
            {"trainer": "use", **own_model, "trainer_options": "*"},
            "[filter.consistency.trainer]",
            defaults={"use": "bi-encoder"},
        )
        default = (
            {}
            if isinstance(data.get("reranker"), str)
            else {"use": "cross-encoder" if data.get("by") == "reranker" else cls._trainer_use(data)}
        )
        return fold_legacy(
            data,
            "reranker",
            {"reranker": "use", "model": "model", "batch_size": "batch_size", "reranker_options": "*"},
            "[filter.consistency.reranker]",
            defaults=default,
        )

    @staticmethod
    def _trainer_use(data: dict) -> str:
        trainer = data.get("trainer")
        return (
            trainer
            if isinstance(trainer, str)
            else trainer.get("use", "bi-encoder")
            if isinstance(trainer, dict)
            else "bi-encoder"
        )

    @model_validator(mode="after")
    def _check(self) -> ConsistencyOptions:
        if self.depth < self.k:
            raise ValueError(f"depth ({self.depth}) must be at least k ({self.k})")
        if self.by == "reranker" and (self.reranker is None or not self.reranker.model):
            raise ValueError(
                "reranker: by = 'reranker' needs a reranker and its model (a "
                "[filter.consistency.reranker] table: use = ..., model = ...)"
            )
        if self.by == "self":
            if self.reranker is not None and self.reranker.model:
                raise ValueError(
                    "reranker: by = 'self' scores the self-trained model; remove reranker.model "
                    "(the trainer's base model is trainer.base_model)"
                )
            wanted = self.trainer.options.get("num_negatives")
            if wanted is not None and wanted != self.negatives:
                raise ValueError(
                    f"trainer: num_negatives = {wanted} but negatives = {self.negatives}: "
                    f"the self-trained model would see {min(wanted, self.negatives)} negative(s) per "
                    "query; set negatives alone (every mined negative reaches training)"
                )
        return self

    @property
    def ranker(self) -> RerankerSpec:
        """The reranker that scores candidates: ``reranker``, else ``cross-encoder`` (``by = reranker``) or the
        reranker named like the trainer (``by = self``)."""
        if self.reranker is not None:
            return self.reranker
        return RerankerSpec.model_construct(
            use="cross-encoder" if self.by == "reranker" else self.trainer.use, model=None, options={}
        )

    @property
    def ranker_name(self) -> str:
        """The name of :attr:`ranker`."""
        return self.ranker.use


class ConsistencyFilter(Filter):
    """Keeps a query only if its source document ranks within the top ``k`` for it (see the module)."""

    name: ClassVar[str] = "consistency"
    Options: ClassVar[type[ConsistencyOptions]] = ConsistencyOptions

    def models(self) -> list[ModelRef]:
        """``by = "reranker"``: ``reranker.model`` as the reranker loads it; ``by = "self"``: the trainer's base
        model (its model trained here is then scored; no other checkpoint is read); ``by = "bm25"``: none."""
        from dataclasses import replace

        from inparsx.plugins import get_registry

        opts = self.options
        if opts.by == "reranker":
            return scorer_models(opts.ranker, "reranker.model", "filter reranker")
        if opts.by == "self":
            trainer = opts.trainer.build(get_registry())
            return [
                replace(ref, option="trainer.base_model", role="self-trained by the filter", output=False)
                for ref in trainer.models()
            ]
        return []

    def apply(self, records: Sequence[SyntheticQuery], ctx: ComponentContext) -> list[Decision]:
        opts = self.options
        docs = ctx.dataset.get_docs({r.doc_id for r in records})
        present = [r for r in records if r.doc_id in docs]
        bm25 = self.bm25_candidates(present, ctx)
        if opts.by == "bm25":
            rankings = {qid: ranked(scores)[: opts.depth] for qid, scores in bm25.items()}
        else:
            model = self.train_self(present, ctx) if opts.by == "self" else opts.ranker.model
            rankings = self.rerank(present, bm25, str(model), ctx)
        decisions = {r.query_id: self.decide(r, rankings.get(r.query_id, [])) for r in present}
        return [decisions.get(r.query_id, Decision(False, MISSING_SOURCE)) for r in records]

    def decide(self, record: SyntheticQuery, ranking: list[str]) -> Decision:
        """Keep when ``record.doc_id`` is within the first ``k`` of ``ranking``; the score is its 1-based rank."""
        rank = ranking.index(record.doc_id) + 1 if record.doc_id in ranking else None
        if rank is not None and rank <= self.options.k:
            return Decision(True, None, float(rank))
        where = f"top {self.options.k}" if self.options.k > 1 else "first"
        return Decision(False, f"source document not {where} by {self.options.by}", float(rank) if rank else None)

    def bm25_candidates(self, records: Sequence[SyntheticQuery], ctx: ComponentContext) -> Run:
        """The BM25 top ``depth`` of every record's query: ``{query_id: {docid: score}}``."""
        return open_spec(self.options.retriever, ctx).search({r.query_id: r.query for r in records}, self.options.depth)

    def rerank(
        self, records: Sequence[SyntheticQuery], bm25: Run, model: str, ctx: ComponentContext
    ) -> dict[str, list[str]]:
        """Each query's candidates (BM25 top ``depth`` plus its source) ranked by the reranker's scores."""
        opts = self.options
        run: Run = {}
        for record in records:
            hits = dict(bm25.get(record.query_id, {}))
            hits.setdefault(record.doc_id, min(hits.values(), default=0.0) - 1.0)
            run[record.query_id] = hits
        texts = {d.doc_id: d.full_text for d in ctx.dataset.get_docs({d for h in run.values() for d in h}).values()}
        reranker = load_scorer(opts.ranker, ctx, model=model)
        meta = {
            "filter": self.name,
            "by": opts.by,
            "reranker": opts.ranker.model_dump(),
            "model": model,
            "depth": opts.depth,
            "records": records_digest(records),
            "trained": self.training_key(records, ctx) if opts.by == "self" else None,
            "key": ctx.cache_key,
        }
        try:
            scores, _ = rerank_run(
                reranker,
                run,
                {r.query_id: r.query for r in records},
                texts,
                opts.depth + 1,
                ResumableJsonl(ctx.dir / "consistency-scores.jsonl"),
                meta,
                description=f"consistency: {opts.ranker_name}",
            )
        finally:
            reranker.unload()
        return {qid: ranked(values) for qid, values in scores.items()}

    def train_self(self, records: Sequence[SyntheticQuery], ctx: ComponentContext) -> Path:
        """Train ``trainer`` on the records with BM25 negatives; returns the model folder (reused when done)."""
        opts = self.options
        folder = ctx.dir / "consistency-self"
        model_dir, done = folder / MODEL, folder / f"{MODEL}.done"
        key = self.training_key(records, ctx)
        if done.is_file() and done.read_text().strip() == key:
            ctx.log(f"consistency: reusing the self-trained model {model_dir}")
            return model_dir
        if folder.exists():
            shutil.rmtree(folder)  # trained with other options, seed or records
        folder.mkdir(parents=True)
        miner = ctx.build(
            MinerSpec.model_construct(
                use="bm25-negatives",
                options={"depth": opts.depth, "n_negatives": opts.negatives, "retriever": opts.retriever.model_dump()},
            )
        )
        triples = folder / TRIPLES.file
        count = write_jsonl(triples, (triple_to_dict(t) for t in miner.mine(list(records), ctx)))
        ctx.log(f"consistency: training {opts.trainer} on {count} synthetic triples ({triples})")
        trainer = ctx.build(opts.trainer)
        trainer.train(triples, model_dir, ctx)
        done.write_text(key + "\n")
        return model_dir

    def training_key(self, records: Sequence[SyntheticQuery], ctx: ComponentContext) -> str:
        """sha256 (16 hex digits) of what the self-trained model depends on: the training options (``trainer``
        and its options, ``negatives``, ``depth``, the retriever), the seed, the records and the stage's
        cache key (:attr:`~inparsx.context.ComponentContext.cache_key`)."""
        import hashlib
        import json

        opts = self.options
        payload = {
            "trainer": opts.trainer.model_dump(),
            "negatives": opts.negatives,
            "depth": opts.depth,
            "retriever": opts.retriever.model_dump(),
            "seed": ctx.seed,
            "records": records_digest(records),
            "key": ctx.cache_key,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
