"""Rerankers: fusion math, below-depth order, monoT5 formatting, agreement with sentence-transformers, the
bi-encoder's embedding cache."""

from __future__ import annotations

import os

import pytest

from inparsx.rerank.fusion import interpolate, merge_reranked, minmax, ranked, rrf, with_tail

FIRST = {"q1": {"a": 9.0, "b": 8.0, "c": 7.0, "d": 6.0, "e": 5.0, "f": 4.0}}
RERANKED = {"q1": {"a": 0.1, "b": 0.9, "c": 0.5}}  # depth 3: a, b, c rescored


def test_merge_keeps_below_depth_documents_below_in_first_stage_order():
    run = merge_reranked(FIRST, RERANKED)["q1"]
    assert ranked(run) == ["b", "c", "a", "d", "e", "f"]
    assert max(run[d] for d in "def") < min(run[d] for d in "abc")


def test_tail_scores_stay_distinct_when_written_with_six_decimals():
    merged = with_tail({"x": 1e-7}, {"x": 1.0, "y": 0.5, "z": 0.4})
    assert round(merged["y"], 6) != round(merged["z"], 6) and ranked(merged) == ["x", "y", "z"]


def test_minmax_and_constant_scores():
    assert minmax({"a": 2.0, "b": 4.0, "c": 3.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}
    assert minmax({"a": 1.0, "b": 1.0}) == {"a": 0.0, "b": 0.0}


def test_interpolation_is_alpha_weighted_minmax_over_the_reranked_set():
    fused = interpolate(FIRST, RERANKED, alpha=0.25)["q1"]
    # rerank minmax: a 0, b 1, c 0.5; first stage minmax over {a, b, c}: a 1, b 0.5, c 0
    assert fused["a"] == pytest.approx(0.25 * 0 + 0.75 * 1.0)
    assert fused["b"] == pytest.approx(0.25 * 1 + 0.75 * 0.5)
    assert fused["c"] == pytest.approx(0.25 * 0.5 + 0.75 * 0.0)
    assert ranked(fused) == ["a", "b", "c", "d", "e", "f"]
    assert ranked(interpolate(FIRST, RERANKED, alpha=1.0)["q1"])[:3] == ["b", "c", "a"]


def test_rrf_sums_reciprocal_ranks_with_k_60():
    fused = rrf(FIRST, RERANKED, k=60)["q1"]
    # rerank ranks: b 1, c 2, a 3; first-stage ranks: a 1, b 2, c 3
    assert fused["b"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["a"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 62 + 1 / 63)
    assert ranked(fused) == ["b", "a", "c", "d", "e", "f"]


# ---- monoT5 formatting and scoring (tiny T5) ----


@pytest.fixture(scope="module")
def t5_path(tmp_path_factory):
    from inparsx.testing import tiny_t5

    return str(tiny_t5(tmp_path_factory.mktemp("t5") / "model"))


@pytest.fixture(scope="module")
def t5_tokenizer(t5_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(t5_path)


LONG_DOC = "Alterations of the architecture of cerebral white matter in the developing human brain. " * 20


def test_monot5_prompt_that_fits_is_the_whole_string_tokenized(t5_tokenizer):
    from inparsx.rerank.monot5 import monot5_input_ids, monot5_prompt

    ids = monot5_input_ids(t5_tokenizer, ["caffeine"], ["white matter"], 512)
    assert monot5_prompt("caffeine", "white matter") == "Query: caffeine Document: white matter Relevant:"
    assert ids == [t5_tokenizer("Query: caffeine Document: white matter Relevant:")["input_ids"]]


@pytest.mark.parametrize("max_length", [40, 64, 100])
def test_monot5_truncation_shortens_the_document_never_the_suffix(t5_tokenizer, max_length):
    from inparsx.rerank.monot5 import monot5_input_ids

    query = "What is the effect of caffeine during pregnancy?"
    [ids] = monot5_input_ids(t5_tokenizer, [query], [LONG_DOC], max_length)
    text = t5_tokenizer.decode(ids, skip_special_tokens=True)
    assert max_length - 3 <= len(ids) <= max_length
    assert text.startswith(f"Query: {query} Document: Alterations") and text.endswith(" Relevant:")
    kept = text[len(f"Query: {query} Document: ") : -len(" Relevant:")]
    assert LONG_DOC.startswith(kept) and 0 < len(kept) < len(LONG_DOC)


def test_monot5_cuts_the_query_only_when_no_document_fits(t5_tokenizer):
    from inparsx.rerank.monot5 import monot5_input_ids

    [ids] = monot5_input_ids(t5_tokenizer, [LONG_DOC], ["a document"], 30)
    text = t5_tokenizer.decode(ids, skip_special_tokens=True)
    assert len(ids) <= 30 and text.startswith("Query: Alterations") and text.endswith("Document:  Relevant:")


def test_encode_pairs_pads_a_batch_for_the_trainer(t5_tokenizer):
    from inparsx.rerank.monot5 import encode_pairs

    batch = encode_pairs(t5_tokenizer, ["q", "another query"], [LONG_DOC, "d"], 32)
    assert tuple(batch["input_ids"].shape) == (2, 32) and batch["attention_mask"][1].sum() < 32


def test_monot5_score_is_p_true_of_the_first_decoding_step(t5_path, t5_tokenizer):
    import torch
    from transformers import AutoModelForSeq2SeqLM

    from inparsx.rerank.monot5 import MonoT5Reranker, label_token_id, monot5_prompt

    reranker = MonoT5Reranker(MonoT5Reranker.Options(dtype="fp32", batch_size=2))
    reranker.load(t5_path)
    queries, docs = ["caffeine", "white matter", "fruit"], [LONG_DOC, "white matter", "passion fruit"]
    scores = reranker.score(queries, docs)
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_path).eval()
    false_id, true_id = label_token_id(t5_tokenizer, "false"), label_token_id(t5_tokenizer, "true")
    assert t5_tokenizer.convert_ids_to_tokens([false_id, true_id]) == ["false", "true"]
    for query, doc, score in zip(queries[1:], docs[1:], scores[1:]):
        inputs = t5_tokenizer(monot5_prompt(query, doc), return_tensors="pt")
        out = model.generate(
            **inputs, max_new_tokens=1, do_sample=False, output_scores=True, return_dict_in_generate=True
        )
        expected = torch.softmax(out.scores[0][0, [false_id, true_id]].double(), -1)[1].item()
        assert score == pytest.approx(expected, abs=1e-5)
    assert all(0.0 < s < 1.0 for s in scores)


# ---- cross-encoder against sentence-transformers (tiny BERT) ----


@pytest.fixture(scope="module")
def bert_path(tmp_path_factory):
    from inparsx.testing import tiny_bert

    return str(tiny_bert(tmp_path_factory.mktemp("bert") / "model"))


PAIRS = [
    ("What is the effect of caffeine during pregnancy?", LONG_DOC),
    ("white matter", "Alterations of the architecture of cerebral white matter."),
    ("passion fruit", "A rare passion fruit native to Australia."),
    ("peacekeeping", "The Canadian Armed Forces started a peacekeeping mission in Egypt in 1956."),
]


def test_cross_encoder_scores_equal_crossencoder_predict(bert_path):
    import numpy as np
    import torch
    from sentence_transformers import CrossEncoder

    from inparsx.rerank.cross_encoder import CrossEncoderReranker

    ours = CrossEncoderReranker(CrossEncoderReranker.Options(dtype="fp32", batch_size=3))
    ours.load(bert_path)
    reference = CrossEncoder(bert_path, num_labels=1, max_length=ours.max_length)
    reference.model.load_state_dict(ours.model.state_dict())
    pairs = PAIRS * 3
    scores = ours.score([q for q, _ in pairs], [d for _, d in pairs])
    expected = reference.predict(pairs, activation_fn=torch.nn.Identity(), batch_size=5)
    assert np.abs(np.array(scores) - expected).max() < 1e-5
    assert ours.score([PAIRS[2][0]], [PAIRS[2][1]])[0] == pytest.approx(scores[2], abs=1e-5)


def test_cross_encoder_with_two_labels_scores_log_odds(bert_path, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from inparsx.rerank.cross_encoder import CrossEncoderReranker

    model = AutoModelForSequenceClassification.from_pretrained(bert_path, num_labels=2)
    model.save_pretrained(tmp_path / "two")
    AutoTokenizer.from_pretrained(bert_path).save_pretrained(tmp_path / "two")
    ours = CrossEncoderReranker(CrossEncoderReranker.Options(dtype="fp32"))
    ours.load(str(tmp_path / "two"))
    tokenizer = ours.tokenizer
    with torch.no_grad():
        logits = model.eval()(**tokenizer(PAIRS[1][0], PAIRS[1][1], return_tensors="pt")).logits[0]
    assert ours.score([PAIRS[1][0]], [PAIRS[1][1]])[0] == pytest.approx((logits[1] - logits[0]).item(), abs=1e-5)


def test_bf16_cross_encoder_stays_close_to_fp32(bert_path):
    from inparsx.rerank.cross_encoder import CrossEncoderReranker

    scores = {}
    for dtype in ("fp32", "bf16"):
        reranker = CrossEncoderReranker(CrossEncoderReranker.Options(dtype=dtype))
        reranker.load(bert_path)
        scores[dtype] = reranker.score([q for q, _ in PAIRS], [d for _, d in PAIRS])
    assert max(abs(a - b) for a, b in zip(scores["fp32"], scores["bf16"])) < 0.05


# ---- bi-encoder and its embedding cache ----


def test_bi_encoder_caches_document_embeddings_across_instances(bert_path):
    from inparsx.rerank.bi_encoder import BiEncoderReranker

    queries, docs = [q for q, _ in PAIRS], [d for _, d in PAIRS]

    def fresh():
        reranker = BiEncoderReranker(BiEncoderReranker.Options(dtype="fp32"))
        reranker.load(bert_path)
        reranker.use_corpus("corpus-under-test")
        return reranker

    first = fresh()
    scores = first.score(queries, docs)
    assert (first.cache.hits, first.cache.misses) == (0, len(docs))
    second = fresh()
    assert second.score(queries, docs) == pytest.approx(scores, abs=1e-6)
    assert (second.cache.hits, second.cache.misses) == (len(docs), 0)
    second.score(queries[:1], ["a new document"])
    assert second.cache.misses == 1 and len(second.cache) == len(docs) + 1
    assert all(-1.0 - 1e-6 <= s <= 1.0 + 1e-6 for s in scores)


def test_bi_encoder_scores_are_cosine_similarities(bert_path):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from inparsx.rerank.bi_encoder import BiEncoderReranker

    reranker = BiEncoderReranker(BiEncoderReranker.Options(dtype="fp32", cache=False))
    reranker.load(bert_path)
    model = SentenceTransformer(bert_path)
    q, d = model.encode([PAIRS[2][0]]), model.encode([PAIRS[2][1]])
    cosine = float((q @ d.T)[0, 0] / (np.linalg.norm(q) * np.linalg.norm(d)))
    assert reranker.score([PAIRS[2][0]], [PAIRS[2][1]])[0] == pytest.approx(cosine, abs=1e-5)


def test_model_cache_key_changes_when_the_weights_change(bert_path, tmp_path):
    import shutil

    from inparsx.rerank.embeddings import model_cache_key

    copy = shutil.copytree(bert_path, tmp_path / "copy")
    before = model_cache_key(str(copy), {"max_length": 256})
    assert model_cache_key(str(copy), {"max_length": 256}) == before
    assert model_cache_key(str(copy), {"max_length": 128}) != before
    weights = next(copy.glob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert model_cache_key(str(copy), {"max_length": 256}) != before


def test_device_option_is_validated():
    from pydantic import ValidationError

    from inparsx.rerank.cross_encoder import CrossEncoderReranker

    with pytest.raises(ValidationError, match="device"):
        CrossEncoderReranker.Options(device="gpu")
    assert CrossEncoderReranker.Options(device="cuda:1").device == "cuda:1"
    with pytest.raises(ValidationError, match="interpolate"):  # a key of the rerank stage, not of the reranker
        CrossEncoderReranker.Options(interpolate=0.3)


def test_embedding_cache_appends_shards_and_merges_them(tmp_path, monkeypatch):
    import numpy as np

    from inparsx.rerank import embeddings

    monkeypatch.setattr(embeddings, "MAX_SHARDS", 2)
    cache = embeddings.EmbeddingCache(tmp_path / "c")
    for i in range(3):
        cache.add([f"k{i}"], np.full((1, 4), float(i)))
    assert len(list((tmp_path / "c").glob("part-*.npz"))) == 3
    reopened = embeddings.EmbeddingCache(tmp_path / "c")
    assert reopened.missing(["k0", "k1", "k2", "k3"]) == ["k3"]
    assert reopened.get(["k2", "k0"]).tolist() == [[2.0] * 4, [0.0] * 4]
    assert len(list((tmp_path / "c").glob("part-*.npz"))) == 1 and not list((tmp_path / "c").glob(".*tmp"))


def test_dtype_device_and_model_name_resolution(bert_path):
    import torch
    from transformers import AutoConfig, AutoTokenizer

    from inparsx.errors import InparsxError
    from inparsx.models import resolve_model_name
    from inparsx.rerank.hardware import model_max_length, resolve_dtype

    cpu = torch.device("cpu")
    assert resolve_dtype("fp32", cpu) is torch.float32 and resolve_dtype("bf16", cpu) is torch.bfloat16
    assert resolve_dtype("auto", cpu) in (torch.float32, torch.bfloat16)
    with pytest.raises(InparsxError, match="fp16"):
        resolve_dtype("fp16", cpu)
    assert os.path.isdir(resolve_model_name("sentence-transformers/all-MiniLM-L6-v2"))
    assert resolve_model_name("org/not-packaged") == "org/not-packaged"
    tokenizer, config = AutoTokenizer.from_pretrained(bert_path), AutoConfig.from_pretrained(bert_path)
    assert model_max_length(tokenizer, config, None) == 512 and model_max_length(tokenizer, config, 64) == 64
    config.max_position_embeddings = 128
    assert model_max_length(tokenizer, config, None) == 128
