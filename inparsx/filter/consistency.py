"""``consistency``: keep a synthetic query only if its source document ranks within the top ``k`` for it.

Three rankers (option ``by``):

- ``bm25``: the first-stage retriever over the whole corpus (a cheap round trip).
- ``reranker``: a pretrained reranker over the BM25 top ``depth`` plus the source document (InPars-light's
  consistency checking; Boytsov et al., TMLR 2024).
- ``self``: a model trained on the synthetic data itself, then used to rank the same candidates
  (Promptagator's round-trip filtering; Dai et al., ICLR 2023, keep if the source is the top-1). It is
  trained with a registered trainer (default ``bi-encoder``) on every record's (query, source document)
  with BM25 negatives (the ``bm25-negatives`` miner), under ``<stage dir>/consistency-self/``.

The source document is always among the reranked candidates, so ``reranker`` and ``self`` ask whether the
model prefers it to BM25's best competitors. Scores are resumable (``consistency-scores.jsonl``); the
decision's score is the source document's rank (``None`` when BM25 did not retrieve it in the top ``depth``).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, model_validator

from inparsx.artifacts import MODEL, TRIPLES, triple_to_dict
from inparsx.filter.base import Decision, Filter
from inparsx.filter.reranker_filter import FILTER_OWN, build_reranker, records_digest
from inparsx.filter.rules import MISSING_SOURCE
from inparsx.io import ResumableJsonl, write_jsonl
from inparsx.plugins import Options, check_options, get_registry, registry_from
from inparsx.records import Run, SyntheticQuery
from inparsx.rerank.base import check_scorer_options
from inparsx.rerank.fusion import ranked
from inparsx.retrieve.base import check_retriever

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.models import ModelRef


class ConsistencyOptions(Options):
    """``consistency`` options.

    ``by``: ``bm25`` | ``reranker`` | ``self`` (module docstring). ``k``: the source must rank within the top
    ``k`` (default 1). ``depth``: BM25 candidates per query (at least ``k``). ``retriever`` and
    ``retriever_options``: the registered retriever for BM25 (default ``bm25``, Lucene). ``reranker``,
    ``model``, ``reranker_options``, ``batch_size``: the reranker for ``by = "reranker"`` (``model``
    required), and the reranker that loads the self-trained model for ``by = "self"`` (default: the
    reranker named like the trainer). ``trainer``, ``trainer_options``: the trainer for ``by = "self"``
    (``model``, when set, is its base model). ``negatives``: BM25 negatives per query for that training (all
    of them reach the trainer; a different ``trainer_options.num_negatives`` is refused).
    ``retriever_options.k`` is refused (the search depth is ``depth``), and so are ``reranker_options`` keys
    that the filter sets itself (``model``, ``batch_size``, ``depth``) or that only the rerank stage reads.
    """

    by: Literal["bm25", "reranker", "self"] = "bm25"
    k: int = Field(1, ge=1)
    depth: int = Field(100, ge=1)
    retriever: str = "bm25"
    retriever_options: dict[str, Any] = Field(default_factory=dict)
    reranker: str | None = None
    model: str | None = None
    reranker_options: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(32, ge=1)
    trainer: str = "bi-encoder"
    trainer_options: dict[str, Any] = Field(default_factory=dict)
    negatives: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> "ConsistencyOptions":
        if self.depth < self.k:
            raise ValueError(f"depth ({self.depth}) must be at least k ({self.k})")
        if self.by == "reranker" and not self.model:
            raise ValueError("by = 'reranker' needs model (the reranker's checkpoint)")
        registry = registry_from(info)
        check_retriever(self.retriever, self.retriever_options, registry)
        if self.by != "bm25":
            check_scorer_options(self.ranker_name, self.reranker_options, {**FILTER_OWN, "depth": "depth"},
                                 registry=registry)
        if self.by == "self":
            if self.model and ({"base_model", "model"} & set(self.trainer_options)):
                raise ValueError("trainer_options.base_model would be replaced by model (the self-trained model's "
                                 "base); set one of them")
            check_options("trainers", self.trainer, self.trainer_options_with_model(), "trainer_options", registry)
            wanted = self.trainer_options.get("num_negatives")
            if wanted is not None and wanted != self.negatives:
                raise ValueError(f"trainer_options.num_negatives = {wanted} but negatives = {self.negatives}: "
                                 f"the self-trained model would see {min(wanted, self.negatives)} negative(s) per "
                                 "query; set negatives alone (every mined negative reaches training)")
        return self

    @property
    def ranker_name(self) -> str:
        """The reranker that scores candidates: ``reranker``, else ``cross-encoder`` (``by = reranker``) or the
        trainer's name (``by = self``)."""
        return self.reranker or ("cross-encoder" if self.by == "reranker" else self.trainer)

    def trainer_options_with_model(self) -> dict[str, Any]:
        """``trainer_options`` plus ``base_model = model`` when ``model`` is set."""
        return {**self.trainer_options, **({"base_model": self.model} if self.model else {})}


class ConsistencyFilter(Filter):
    """Keeps a query only if its source document ranks within the top ``k`` for it (see the module)."""

    name: ClassVar[str] = "consistency"
    Options: ClassVar[type[ConsistencyOptions]] = ConsistencyOptions

    def models(self) -> list["ModelRef"]:
        """``by = "reranker"``: ``model`` as the reranker loads it; ``by = "self"``: the trainer's base model
        (its model trained here is then scored; no other checkpoint is read); ``by = "bm25"``: none."""
        from dataclasses import replace

        from inparsx.plugins import get_registry
        from inparsx.rerank.base import scorer_model_ref

        opts = self.options
        if opts.by == "reranker" and opts.model:
            return scorer_model_ref(opts.ranker_name, opts.reranker_options, opts.model, "model", "filter reranker")
        if opts.by == "self":
            trainer = get_registry().build("trainers", opts.trainer, opts.trainer_options_with_model())
            option = "model" if opts.model else "trainer_options.base_model"
            return [replace(ref, option=option, role="self-trained by the filter", output=False)
                    for ref in trainer.models()]
        return []

    def apply(self, records: Sequence[SyntheticQuery], ctx: "ComponentContext") -> list[Decision]:
        opts = self.options
        docs = ctx.dataset.get_docs({r.doc_id for r in records})
        present = [r for r in records if r.doc_id in docs]
        bm25 = self.bm25_candidates(present, ctx)
        if opts.by == "bm25":
            rankings = {qid: ranked(scores)[:opts.depth] for qid, scores in bm25.items()}
        else:
            model = self.train_self(present, ctx) if opts.by == "self" else opts.model
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

    def bm25_candidates(self, records: Sequence[SyntheticQuery], ctx: "ComponentContext") -> Run:
        """The BM25 top ``depth`` of every record's query: ``{query_id: {docid: score}}``."""
        from inparsx.retrieve.stage import open_retriever

        retriever = open_retriever(self.options.retriever, self.options.retriever_options, ctx.dataset)
        return retriever.search({r.query_id: r.query for r in records}, self.options.depth)

    def rerank(self, records: Sequence[SyntheticQuery], bm25: Run, model: str, ctx: "ComponentContext") -> dict[str, list[str]]:
        """Each query's candidates (BM25 top ``depth`` plus its source) ranked by the reranker's scores."""
        from inparsx.rerank.reranking import rerank_run

        opts = self.options
        run: Run = {}
        for record in records:
            hits = dict(bm25.get(record.query_id, {}))
            hits.setdefault(record.doc_id, min(hits.values(), default=0.0) - 1.0)
            run[record.query_id] = hits
        texts = {d.doc_id: d.full_text for d in ctx.dataset.get_docs({d for h in run.values() for d in h}).values()}
        reranker = build_reranker(opts.ranker_name, model, opts.batch_size, opts.reranker_options, ctx)
        meta = {"filter": self.name, "by": opts.by, "reranker": opts.ranker_name, "model": model, "depth": opts.depth,
                "reranker_options": opts.reranker_options, "records": records_digest(records),
                "trained": self.training_key(records, ctx) if opts.by == "self" else None, "key": ctx.cache_key}
        try:
            scores, _ = rerank_run(reranker, run, {r.query_id: r.query for r in records}, texts, opts.depth + 1,
                                   ResumableJsonl(ctx.dir / "consistency-scores.jsonl"), meta,
                                   description=f"consistency: {opts.ranker_name}")
        finally:
            reranker.unload()
        return {qid: ranked(values) for qid, values in scores.items()}

    def train_self(self, records: Sequence[SyntheticQuery], ctx: "ComponentContext") -> Path:
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
        miner = get_registry().build("miners", "bm25-negatives", {
            "depth": opts.depth, "n_negatives": opts.negatives, "retriever": opts.retriever,
            "retriever_options": opts.retriever_options})
        triples = folder / TRIPLES.file
        count = write_jsonl(triples, (triple_to_dict(t) for t in miner.mine(list(records), ctx)))
        ctx.log(f"consistency: training {opts.trainer} on {count} synthetic triples ({triples})")
        trainer = get_registry().build("trainers", opts.trainer, opts.trainer_options_with_model())
        trainer.train(triples, model_dir, ctx)
        done.write_text(key + "\n")
        return model_dir

    def training_key(self, records: Sequence[SyntheticQuery], ctx: "ComponentContext") -> str:
        """sha256 (16 hex digits) of what the self-trained model depends on: the training options (``trainer``,
        its options, ``model``, ``negatives``, ``depth``, the retriever), the seed, the records and the stage's
        cache key (:attr:`~inparsx.context.ComponentContext.cache_key`)."""
        import hashlib
        import json

        opts = self.options
        payload = {"trainer": opts.trainer, "options": opts.trainer_options_with_model(), "negatives": opts.negatives,
                   "depth": opts.depth, "retriever": opts.retriever, "retriever_options": opts.retriever_options,
                   "seed": ctx.seed, "records": records_digest(records), "key": ctx.cache_key}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
