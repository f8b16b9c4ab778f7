"""``bi-encoder``: fine-tune a sentence-transformers embedding model on synthetic (query, d+, d-...) triples.

The GenQ / GPL family of domain adaptation (Thakur et al. 2021, BEIR; Wang et al. 2022, GPL): queries and
documents are embedded separately, so scoring a collection costs one pass per document, far cheaper than a
cross-encoder on a CPU. Loss: ``MultipleNegativesRankingLoss`` (InfoNCE; Henderson et al. 2017), a softmax
over the query's positive, its mined hard negatives and every other document of the batch (in-batch
negatives), with sentence-transformers' ``NO_DUPLICATES`` batch sampler so that two queries of the same
document never meet as each other's negatives. ``cached-mnrl`` is the gradient-cache variant (Gao et al.
2021) for batches larger than memory allows. ``margin-mse`` (Hofstätter et al. 2020, as GPL trains its
students, Wang et al. 2022) regresses the student's score margin ``sim(q, d+) - sim(q, d-)`` (dot product of
the normalised embeddings, i.e. cosine) onto a teacher's margin, which the triples stage stores
(``bm25-negatives`` with a ``teacher``): the student learns the teacher's preferences, not just "the source
document wins", so it moves only as far as the teacher disagrees with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from inparsx.devices import world_size
from inparsx.models import loading
from inparsx.train.common import HFTrainer, TrainerOptions, model_field, training_arguments
from inparsx.train.data import margin_rows, require_negatives, to_dataset, tuple_rows


class BiEncoderOptions(TrainerOptions):
    """``bi-encoder`` options (shared ones: :class:`~inparsx.train.common.TrainerOptions`).

    ``loss``: ``mnrl`` | ``cached-mnrl`` | ``margin-mse`` (needs teacher scores in the triples). ``scale``: the
    inverse temperature of the softmax over cosine
    similarities (20, sentence-transformers' default). ``mini_batch_size``: sequences per forward pass of
    ``cached-mnrl``. ``max_length``: tokens kept per query and per document (``max_seq_length``).
    ``num_negatives``: mined hard negatives per query (0: in-batch negatives only; ``None``: every one the
    triples carry).
    """

    base_model: str = model_field("sentence-transformers/all-MiniLM-L6-v2")
    loss: Literal["mnrl", "cached-mnrl", "margin-mse"] = "mnrl"
    scale: float = Field(20.0, gt=0)
    mini_batch_size: int = Field(32, ge=1)
    batch_size: int = Field(32, ge=2)


class BiEncoderTrainer(HFTrainer):
    """Fine-tunes a sentence-transformers bi-encoder (dense retriever / reranker) on synthetic triples."""

    name: ClassVar[str] = "bi-encoder"
    Options: ClassVar[type[BiEncoderOptions]] = BiEncoderOptions
    usage = """```python
from sentence_transformers import SentenceTransformer
model = SentenceTransformer("path/to/this/folder")
scores = model.similarity(model.encode(["a query"]), model.encode(["a document"]))
```
or as an inparsx reranker: `[rerank] use = "bi-encoder"`, `model = "@train"`."""

    def build(self, triples, path: Path, base_model: str, checkpoints: Path, seed: int):
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.base.sampler import BatchSamplers

        opts = self.options
        n = self.negatives_for(triples)
        require_negatives(triples, n, path, f"train.num_negatives = {opts.num_negatives}")
        with loading("base model", base_model):
            model = SentenceTransformer(base_model)
        model.max_seq_length = opts.max_length
        args = SentenceTransformerTrainingArguments(
            **training_arguments(opts, checkpoints, seed), batch_sampler=BatchSamplers.NO_DUPLICATES
        )
        if opts.loss == "margin-mse":
            dataset = to_dataset(margin_rows(triples, max(n, 1), path))
        else:
            dataset = to_dataset(tuple_rows(triples, n, anchor="anchor"))
        return SentenceTransformerTrainer(
            model=model, args=args, train_dataset=dataset, loss=self.loss(model), callbacks=self.trainer_callbacks()
        )

    def loss(self, model):
        """``MultipleNegativesRankingLoss`` (or its cached variant; negatives are gathered across GPUs when
        training runs in several processes), or ``MarginMSELoss`` on dot products."""
        from sentence_transformers.sentence_transformer import losses

        opts = self.options
        if opts.loss == "margin-mse":
            return losses.MarginMSELoss(model)
        gather = world_size() > 1
        if opts.loss == "cached-mnrl":
            return losses.CachedMultipleNegativesRankingLoss(
                model, scale=opts.scale, mini_batch_size=opts.mini_batch_size, gather_across_devices=gather
            )
        return losses.MultipleNegativesRankingLoss(model, scale=opts.scale, gather_across_devices=gather)

    def save(self, trainer, output_dir: Path) -> None:
        trainer.model.save_pretrained(str(output_dir), create_model_card=False)
