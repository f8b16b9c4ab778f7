"""``monot5``: fine-tune a T5 model as monoT5 (Nogueira, Jiang, Pradeep & Lin, Findings of EMNLP 2020).

The input is ``Query: q Document: d Relevant:`` and the target the word ``true`` (the query's positive) or
``false`` (a BM25 negative); at inference the reranker's score is the probability of ``true`` against
``false`` at the first decoding step. Inputs are built by the reranker's own formatting function
(:mod:`inparsx.rerank`), so training and reranking see identical text and identical truncation: the document
is shortened, never the ``Relevant:`` suffix.

Defaults reproduce InPars-v2 (Jeronymo et al. 2023) and the InPars toolkit's PyTorch recipe: 156 steps of
an effective batch of 128 (8 x 16 gradient accumulation; 128 x 512 tokens matches the 65,536 tokens per batch
of the paper's TPU run), learning rate 3e-4 (the value the InPars maintainers confirmed for the PyTorch
recipe; the TPU run used Adafactor at a constant 1e-3), constant schedule, no warm-up, weight decay 5e-5,
AdamW, 512 input tokens, one negative per positive.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from inparsx.models import from_pretrained, loading, saveable_model
from inparsx.train.common import HFTrainer, TrainerOptions, model_field, training_arguments
from inparsx.train.data import pointwise_rows, require_negatives, to_dataset


class MonoT5Options(TrainerOptions):
    """``monot5`` options; defaults are InPars-v2's (module docstring).

    ``true_token``/``false_token``: the target words (a ``monot5`` reranker loading this model reads them from
    ``inparsx_training.json``). ``num_negatives``: at least 1 (monoT5 needs ``false`` examples). ``optim``: a
    Hugging Face optimiser name
    (``adamw_torch``, or ``adafactor`` as in the original TPU training).
    """

    base_model: str = model_field("castorini/monot5-base-msmarco-10k")
    max_steps: int | None = Field(156, ge=1)
    batch_size: int = Field(8, ge=1)
    gradient_accumulation_steps: int = Field(16, ge=1)
    learning_rate: float = Field(3e-4, gt=0)
    lr_scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine"] = "constant"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(5e-5, ge=0)
    max_length: int = Field(512, ge=8)
    num_negatives: int | None = Field(None, ge=1)
    true_token: str = "true"
    false_token: str = "false"
    optim: Literal["adamw_torch", "adafactor"] = "adamw_torch"


class MonoT5Trainer(HFTrainer):
    """Fine-tunes monoT5 (T5 generating ``true``/``false``) on synthetic triples, as InPars v1/v2 do."""

    name: ClassVar[str] = "monot5"
    Options: ClassVar[type[MonoT5Options]] = MonoT5Options
    usage = """As an inparsx reranker: `[rerank] use = "monot5"`, `model = "@train"`; or with transformers,
`AutoModelForSeq2SeqLM.from_pretrained("path/to/this/folder")` scoring "Query: q Document: d Relevant:" by the
probability of "true" against "false" at the first decoding step."""

    def build(self, triples, path: Path, base_model: str, checkpoints: Path, seed: int):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, Trainer, TrainingArguments

        opts = self.options
        n = self.negatives_for(triples)
        require_negatives(triples, 1, path, "monot5 (one false example per query)")
        with loading("base model", base_model):
            tokenizer = from_pretrained(AutoTokenizer, base_model)
            model = from_pretrained(AutoModelForSeq2SeqLM, base_model)
        args = TrainingArguments(
            **training_arguments(opts, checkpoints, seed), optim=opts.optim, remove_unused_columns=False
        )
        dataset = to_dataset(pointwise_rows(triples, n))
        return Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            data_collator=MonoT5Collator(tokenizer, opts),
            callbacks=self.trainer_callbacks(),
        )

    def save(self, trainer, output_dir: Path) -> None:
        trainer.model = saveable_model(trainer.model)  # a GGUF-initialised model saves as safetensors
        trainer.save_model(str(output_dir))


class MonoT5Collator:
    """Turns rows (``query``, ``document``, ``label`` 1.0/0.0) into a padded monoT5 batch: ``input_ids`` and
    ``attention_mask`` from the reranker's own formatting and truncation
    (:func:`inparsx.rerank.monot5.encode_pairs`), and ``labels``: the id the reranker reads for ``true`` or
    ``false`` (:func:`inparsx.rerank.monot5.label_token_id`) followed by ``</s>``, the two-token targets of the
    InPars training scripts."""

    def __init__(self, tokenizer, options: MonoT5Options):
        from inparsx.rerank.monot5 import label_token_id

        self.tokenizer = tokenizer
        self.max_length = options.max_length
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        self.targets = {
            1.0: [label_token_id(tokenizer, options.true_token), *eos],
            0.0: [label_token_id(tokenizer, options.false_token), *eos],
        }

    def __call__(self, rows: list[dict]):
        import torch

        from inparsx.rerank.monot5 import encode_pairs

        batch = encode_pairs(self.tokenizer, [r["query"] for r in rows], [r["document"] for r in rows], self.max_length)
        batch["labels"] = torch.tensor([self.targets[float(r["label"])] for r in rows], dtype=torch.long)
        return batch
