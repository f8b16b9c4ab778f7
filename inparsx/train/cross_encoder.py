"""``cross-encoder``: fine-tune any Hugging Face encoder as a (query, document) -> score reranker.

Built on sentence-transformers' ``CrossEncoderTrainer`` (a Hugging Face ``Trainer``). Losses:

- ``bce``: pointwise binary cross-entropy on (q, d+, 1) and (q, d-, 0) pairs, the monoBERT objective
  (Nogueira & Cho 2019) and the InPars-light pointwise variant; ``pos_weight`` balances positives against the
  ``num_negatives`` negatives of each query.
- ``lce``: localized contrastive estimation (Gao, Dai & Callan, ECIR 2021): a softmax cross-entropy over
  the group (d+, d-_1..d-_n) of each query, n = ``num_negatives`` hard negatives (the listwise loss
  InPars-light trains its MiniLM rerankers with, Boytsov et al. 2023).
- ``mnrl``: ``lce`` plus ``in_batch_negatives`` documents of other queries in the batch (sentence-transformers'
  cross-encoder ``MultipleNegativesRankingLoss``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from inparsx.models import loading
from inparsx.train.common import HFTrainer, TrainerOptions, model_field, training_arguments
from inparsx.train.data import pointwise_rows, require_negatives, to_dataset, tuple_rows


class CrossEncoderOptions(TrainerOptions):
    """``cross-encoder`` options (see :class:`~inparsx.train.common.TrainerOptions` for the shared ones).

    ``loss``: ``bce`` | ``lce`` | ``mnrl`` (module docstring). ``in_batch_negatives``: extra negatives per query
    taken from the batch (``mnrl`` only). Defaults: a MS MARCO MiniLM-L6 cross-encoder (the InPars-light
    small reranker), learning rate 2e-5, 256 tokens per (query, document) pair. ``num_negatives = 0`` is
    refused with ``bce`` and ``lce``, whose only negatives are the mined ones.
    """

    base_model: str = model_field("cross-encoder/ms-marco-MiniLM-L6-v2")
    loss: Literal["bce", "lce", "mnrl"] = "bce"
    in_batch_negatives: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _needs_negatives(self) -> CrossEncoderOptions:
        if self.num_negatives == 0 and self.loss != "mnrl":
            raise ValueError(
                f"num_negatives = 0 with loss = {self.loss!r} trains on positives only (every label "
                "relevant); give at least 1, or use loss = 'mnrl' (in-batch negatives)"
            )
        return self


class CrossEncoderTrainer(HFTrainer):
    """Fine-tunes a cross-encoder reranker (sentence-transformers ``CrossEncoder``) on synthetic triples."""

    name: ClassVar[str] = "cross-encoder"
    Options: ClassVar[type[CrossEncoderOptions]] = CrossEncoderOptions
    usage = """```python
from sentence_transformers import CrossEncoder
model = CrossEncoder("path/to/this/folder")
scores = model.predict([("a query", "a document")])  # higher = more relevant
```
or as an inparsx reranker: `[rerank] use = "cross-encoder"`, `model = "@train"`."""

    def build(self, triples, path: Path, base_model: str, checkpoints: Path, seed: int):
        from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainingArguments
        from sentence_transformers.cross_encoder import CrossEncoderTrainer as STTrainer

        opts = self.options
        n = self.negatives_for(triples)
        require_negatives(
            triples,
            max(n, 1) if opts.loss != "mnrl" else n,
            path,
            f"train.loss = {opts.loss!r} with num_negatives = {n}",
        )
        with loading("base model", base_model):
            model = CrossEncoder(base_model, num_labels=1, max_length=opts.max_length)
        rows = pointwise_rows(triples, n) if opts.loss == "bce" else tuple_rows(triples, n)
        args = CrossEncoderTrainingArguments(**training_arguments(opts, checkpoints, seed))
        return STTrainer(
            model=model,
            args=args,
            train_dataset=to_dataset(rows),
            loss=self.loss(model),
            callbacks=self.trainer_callbacks(),
        )

    def loss(self, model):
        """The loss module for the ``loss`` option."""
        import torch
        from sentence_transformers.cross_encoder import losses

        opts = self.options
        if opts.loss == "bce":
            return losses.BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(float(max(self.negatives or 1, 1))))
        if opts.loss == "lce":
            return LocalizedContrastiveLoss(model)
        return losses.MultipleNegativesRankingLoss(
            model, num_negatives=opts.in_batch_negatives, activation_fn=torch.nn.Identity(), scale=1.0
        )

    def save(self, trainer, output_dir: Path) -> None:
        trainer.model.save_pretrained(str(output_dir), create_model_card=False)


def LocalizedContrastiveLoss(model):
    """Localized contrastive estimation (Gao et al. 2021): softmax cross-entropy of the positive against the
    query's own hard negatives only. Sentence-transformers' cross-encoder ``MultipleNegativesRankingLoss``
    with its in-batch sampling switched off, raw logits and scale 1."""
    import torch
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss

    class _LCE(MultipleNegativesRankingLoss):
        def get_in_batch_negatives(self, anchors, candidates):
            return iter(())

        def get_config_dict(self):
            return {"loss": "localized contrastive estimation (hard negatives only)"}

    return _LCE(model, num_negatives=None, activation_fn=torch.nn.Identity(), scale=1.0)
