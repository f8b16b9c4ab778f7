"""Prompts: the InPars templates file (pinned, checksummed), InPars / GBQ / Promptagator / custom / chat
prompts on real SciFact documents, truncation, and where few-shot examples come from."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from inparsx.datasets.beir import BeirFolderDataset
from inparsx.errors import InparsxError
from inparsx.generate import templates as tpl
from inparsx.generate.fewshot import build_pool, judged_pairs
from inparsx.generate.prompts import PromptBuilder, PromptTokenizer, split_static
from inparsx.records import Document
from inparsx.testing import SIMPLE_CHAT_TEMPLATE, train_tokenizer


@pytest.fixture(scope="module")
def tokenizer(scifact: BeirFolderDataset):
    texts = [doc.full_text for _, doc in zip(range(300), scifact.docs_iter())]
    return train_tokenizer(texts, vocab_size=2000)


@pytest.fixture(scope="module")
def templates(prompts_file: Path) -> dict[str, tpl.PromptTemplate]:
    return tpl.parse_templates(prompts_file)


@pytest.fixture(scope="module")
def docs(scifact: BeirFolderDataset) -> list[Document]:
    return [doc for _, doc in zip(range(5), scifact.docs_iter())]


def test_upstream_file_has_the_inpars_and_promptagator_templates(templates):
    assert not templates["inpars"].dynamic and not templates["inpars-gbq"].dynamic
    assert templates["promptagator-scifact"].dynamic
    assert templates["promptagator-scifact"].text == "{document}\nFinding: {query}\n"
    assert {f"promptagator-{name}" for name in ("arguana", "fiqa", "scifact", "fever")} <= set(templates)


def test_inpars_prompt_is_upstream_format_rstripped(templates, tokenizer, docs, prompts_file):
    raw = yaml.safe_load(prompts_file.read_text())["inpars"]["template"]
    builder = PromptBuilder(templates["inpars"], tokenizer, max_doc_tokens=10_000, max_prompt_tokens=100_000)
    prompt = builder.build(docs[0])
    assert prompt.text == raw.format(document=docs[0].full_text, query="").rstrip()
    assert prompt.text.endswith("Example 4:\nDocument: " + docs[0].full_text + "\nRelevant Query:")
    assert prompt.input_ids == tokenizer(prompt.text)["input_ids"] and prompt.fewshot_ids == []


def test_braces_in_documents_are_literal(templates, tokenizer):
    doc = Document("d", "a set {x} and {query} and {document}")
    text = PromptBuilder(templates["inpars-gbq"], tokenizer).build(doc).text
    assert text.endswith("Document: a set {x} and {query} and {document}\nGood Question:")


@pytest.mark.parametrize(
    "text, message",
    [
        ("Document: {document}", "must contain"),
        ("{query} {document}", "must contain"),
        ("{document}\nQ: {query}\nmore", "after {query}"),
    ],
)
def test_bad_templates_are_rejected(text, message):
    with pytest.raises(InparsxError, match=message):
        tpl.PromptTemplate("t", text)


def test_upstream_download_is_checked_and_cached(prompts_file, tmp_path):
    cache = tmp_path / "cache"
    path = tpl.fetch_upstream(prompts_file.as_uri(), cache)
    assert path.parent == cache and path.read_bytes() == prompts_file.read_bytes()
    assert tpl.fetch_upstream("file:///nonexistent/never-read.yaml", cache) == path  # served from the cache
    tampered = tmp_path / "tampered.yaml"
    tampered.write_text(prompts_file.read_text() + "\n# edited\n")
    with pytest.raises(InparsxError, match="sha256"):
        tpl.fetch_upstream(tampered.as_uri(), tmp_path / "other-cache")
    assert not (tmp_path / "other-cache").exists()
    with pytest.raises(InparsxError, match="INPARSX_PROMPTS_FILE"):
        tpl.fetch_upstream("file:///nonexistent/templates.yaml", tmp_path / "third")


def test_prompts_file_option_wins_over_the_environment(prompts_file, tmp_path, monkeypatch):
    mine = tmp_path / "mine.yaml"
    mine.write_text("inpars:\n  mode: static\n  template: |\n    D: {document}\n    Q: {query}\n")
    monkeypatch.setenv(tpl.PROMPTS_FILE_ENV, str(prompts_file))
    assert tpl.load_templates(mine)["inpars"].text == "D: {document}\nQ: {query}\n"
    assert "promptagator-scifact" in tpl.load_templates()
    bad = tmp_path / "bad.yaml"
    bad.write_text("inpars:\n  mode: sometimes\n  template: x\n")
    with pytest.raises(InparsxError, match="mode"):
        tpl.load_templates(bad)


def test_promptagator_examples_come_from_train_never_test(scifact):
    pool = build_pool(scifact, "test", seed=1, n_fewshot=3)
    train, test = scifact.qrels("train"), scifact.qrels("test")
    assert pool.split == "train" and not pool.evaluated
    assert len(pool.examples) == len(judged_pairs(scifact, "train")) > 700
    assert all(e.query_id in train and e.query_id not in test for e in pool.examples)
    assert all(train[e.query_id][e.doc_id] > 0 for e in pool.examples)
    first, again = pool.sample("4983", 3), pool.sample("4983", 3)
    assert first == again and len({e.query_id for e in first}) == 3
    assert len({tuple(e.query_id for e in pool.sample(d, 3)) for d in ("1", "2", "3", "4", "5")}) == 5


def test_examples_never_show_the_target_document(scifact):
    pool = build_pool(scifact, "test", seed=3, n_fewshot=3, pool_size=4)
    target = pool.examples[0].doc_id
    for _ in range(5):
        assert all(e.doc_id != target for e in pool.sample(target, 3))


def test_without_train_examples_come_from_test_and_are_few(scifact_small, tmp_path):
    folder = tmp_path / "test-only"
    shutil.copytree(scifact_small, folder)
    (folder / "qrels" / "train.tsv").unlink()
    pool = build_pool(BeirFolderDataset(folder), "test", seed=1, n_fewshot=3)
    assert pool.split == "test" and pool.evaluated and len(pool.examples) == 3


def test_promptagator_prompt_layout(templates, tokenizer, scifact, docs):
    pool = build_pool(scifact, "test", seed=1, n_fewshot=3)
    builder = PromptBuilder(
        templates["promptagator-scifact"],
        tokenizer,
        pool=pool,
        n_fewshot=3,
        max_doc_tokens=100_000,
        max_prompt_tokens=100_000,
    )
    prompt = builder.build(docs[1])
    shots = pool.sample(docs[1].doc_id, 3)
    expected = "".join(f"{e.document}\nFinding: {e.query}\n" for e in shots) + f"{docs[1].full_text}\nFinding:"
    assert prompt.text == expected and prompt.fewshot_ids == [e.query_id for e in shots]


def test_documents_are_cut_at_max_doc_tokens(templates, tokenizer, docs):
    builder = PromptBuilder(templates["inpars"], tokenizer, max_doc_tokens=40)
    long_doc = max(docs, key=lambda d: len(d.full_text))
    cut = builder.truncate(long_doc.full_text, 40)
    assert builder.count(cut) == 40 and long_doc.full_text.startswith(cut)
    assert f"Document: {cut}\nRelevant Query:" in builder.build(long_doc).text


def test_long_prompts_drop_examples_then_shorten_the_document(templates, tokenizer, scifact, docs):
    pool = build_pool(scifact, "test", seed=1, n_fewshot=3)
    full = PromptBuilder(templates["promptagator-scifact"], tokenizer, pool=pool).build(docs[0])
    budget = len(full.input_ids) - 5
    fewer = PromptBuilder(templates["promptagator-scifact"], tokenizer, pool=pool, max_prompt_tokens=budget).build(
        docs[0]
    )
    assert len(fewer.fewshot_ids) < 3 and len(fewer.input_ids) <= budget and fewer.text.endswith("\nFinding:")
    tiny = PromptBuilder(templates["inpars"], tokenizer, max_prompt_tokens=len(full.input_ids) // 3 + 400)
    prompt = tiny.build(docs[0])
    assert len(prompt.input_ids) <= tiny.max_prompt_tokens and prompt.text.endswith("\nRelevant Query:")
    assert tiny.count(prompt.text.split("Example 4:\nDocument: ")[1]) < 256
    with pytest.raises(InparsxError, match="max_prompt_tokens"):
        PromptBuilder(templates["inpars"], tokenizer, max_prompt_tokens=50).build(docs[0])


def test_chat_form_turns_examples_into_turns(templates, tokenizer, docs, scifact):
    tokenizer = train_tokenizer(vocab_size=300)
    tokenizer.chat_template = SIMPLE_CHAT_TEMPLATE
    text = (
        PromptBuilder(
            templates["inpars"],
            tokenizer,
            chat=True,
            instruction="Write a query.",
            max_doc_tokens=100_000,
            max_prompt_tokens=100_000,
        )
        .build(docs[0])
        .text
    )
    assert text.startswith("<|system|>\nWrite a query.\n<|user|>\nExample 1:\nDocument: We don't know")
    assert "Relevant Query:\n<|assistant|>\nIs a little caffeine ok during pregnancy?\n<|user|>\nExample 2:" in text
    assert text.endswith(f"Example 4:\nDocument: {docs[0].full_text}\nRelevant Query:\n<|assistant|>\n")
    turns, _ = split_static(templates["inpars-gbq"])
    assert turns[2][1] == (
        "Information on the Canadian Armed Forces size and history.\nBad Question: How large is the Canadian military?"
    )
    pool = build_pool(scifact, "test", seed=1, n_fewshot=2)
    chat = PromptBuilder(
        templates["promptagator-scifact"], tokenizer, chat=True, instruction="", pool=pool, n_fewshot=2
    )
    prompt = chat.build(docs[0])
    assert prompt.text.count("<|assistant|>") == 3 and not prompt.text.startswith("<|system|>")
    assert prompt.input_ids == tokenizer(prompt.text, add_special_tokens=False)["input_ids"]
    with pytest.raises(InparsxError, match="chat template"):
        PromptBuilder(templates["inpars"], train_tokenizer(vocab_size=300), chat=True)


def test_a_chat_prompt_carries_its_messages_and_a_text_prompt_none(templates, docs, scifact):
    tokenizer = train_tokenizer(vocab_size=300)
    tokenizer.chat_template = SIMPLE_CHAT_TEMPLATE
    pool = build_pool(scifact, "test", seed=1, n_fewshot=2)
    prompt = PromptBuilder(
        templates["promptagator-scifact"], tokenizer, chat=True, instruction="Ask.", pool=pool, n_fewshot=2
    ).build(docs[0])
    assert prompt.messages is not None
    assert [m["role"] for m in prompt.messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert prompt.messages[0]["content"] == "Ask." and prompt.messages[-1]["content"].startswith(docs[0].title)
    assert prompt.text == tokenizer.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
    static = PromptBuilder(templates["inpars"], tokenizer, chat=True, instruction="").build(docs[0])
    assert static.messages is not None and static.messages[0]["role"] == "user" and len(static.messages) == 7
    assert PromptBuilder(templates["inpars"], tokenizer).build(docs[0]).messages is None


class WordTokenizer:
    """A tokenizer written from :class:`PromptTokenizer` alone: one token per whitespace-separated word."""

    is_fast = True
    chat_template = "words"

    def __call__(self, text, add_special_tokens=True, return_offsets_mapping=False):
        spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        return {"input_ids": [len(text[a:b]) for a, b in spans], "offset_mapping": spans}

    def decode(self, ids):
        raise AssertionError("a fast tokenizer is cut by its offsets, never decoded")

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "".join(f"[{m['role']}] {m['content']}\n" for m in messages) + "[assistant]"


def test_a_tokenizer_with_only_what_the_protocol_lists_builds_prompts(templates, docs):
    word = WordTokenizer()
    assert isinstance(word, PromptTokenizer) and isinstance(train_tokenizer(vocab_size=300), PromptTokenizer)
    assert not isinstance(object(), PromptTokenizer)
    prompt = PromptBuilder(templates["inpars"], word, max_doc_tokens=5, max_prompt_tokens=100_000).build(docs[0])
    assert " ".join(docs[0].full_text.split()[:5]) in prompt.text
    assert " ".join(docs[0].full_text.split()[:6]) not in prompt.text
    assert len(prompt.input_ids) == len(prompt.text.split())
    chat = PromptBuilder(templates["inpars"], word, chat=True, instruction="Ask.").build(docs[0])
    assert chat.text.startswith("[system] Ask.\n[user] Example 1:") and chat.text.endswith("[assistant]")


def test_shared_prefix_is_what_every_prompt_starts_with(templates, tokenizer, docs, scifact):
    builder = PromptBuilder(templates["inpars"], tokenizer)
    prefix = builder.shared_prefix()
    assert prefix.endswith("Example 4:\n") and all(builder.build(d).text.startswith(prefix) for d in docs)
    pool = build_pool(scifact, "test", seed=1, n_fewshot=3)
    assert PromptBuilder(templates["promptagator-scifact"], tokenizer, pool=pool).shared_prefix() == ""


def test_custom_template_files(tmp_path, tokenizer, docs, scifact):
    static = tmp_path / "static.txt"
    static.write_text("Passage: {document}\nA question it answers: {query}\n")
    text = PromptBuilder(tpl.read_custom_template(static), tokenizer, max_doc_tokens=10_000).build(docs[0]).text
    assert text == f"Passage: {docs[0].full_text}\nA question it answers:"
    pool = build_pool(scifact, "test", seed=1, n_fewshot=2)
    dynamic = PromptBuilder(
        tpl.read_custom_template(static, dynamic=True), tokenizer, pool=pool, n_fewshot=2, max_doc_tokens=10_000
    ).build(docs[0])
    assert dynamic.text.count("A question it answers:") == 3 and len(dynamic.fewshot_ids) == 2
    with pytest.raises(InparsxError, match="cannot read"):
        tpl.read_custom_template(tmp_path / "missing.txt")


def test_instruction_heads_the_text_prompt_before_the_few_shot_examples(templates, tokenizer, docs, scifact):
    plain = PromptBuilder(templates["inpars"], tokenizer, max_doc_tokens=10_000).build(docs[0]).text
    headed = (
        PromptBuilder(
            templates["inpars"], tokenizer, instruction="Ask what a scientist would ask.", max_doc_tokens=10_000
        )
        .build(docs[0])
        .text
    )
    assert plain.startswith("Example 1:") and headed == "Ask what a scientist would ask.\n\n" + plain
    pool = build_pool(scifact, "test", seed=1, n_fewshot=2)
    dynamic = PromptBuilder(
        templates["promptagator-scifact"], tokenizer, pool=pool, n_fewshot=2, instruction="Write a claim."
    )
    assert (
        dynamic.build(docs[0]).text.startswith("Write a claim.\n\n") and dynamic.shared_prefix() == "Write a claim.\n\n"
    )
    assert PromptBuilder(templates["inpars"], tokenizer, instruction="").build(docs[0]).text.startswith("Example 1:")
