"""Generator ``openai`` against a real HTTP server on loopback: records, retries, malformed bodies, resumption."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai_server import OpenAIServer, expected_query

from inparsx.errors import InparsxError
from inparsx.generate.stage import generate_queries
from inparsx.testing import component_context, tiny_beir
from inparsx.testing.collections import DOCS
from inparsx.testing.contracts import GeneratorContract
from inparsx_openai.generator import OpenAIGenerator, OpenAIOptions, is_transient

PLUGIN = Path(__file__).resolve().parents[1]
FAST_RETRY = {"backoff": 0.01, "max_retries": 4}


@pytest.fixture()
def collection(tmp_path: Path) -> Path:
    return tiny_beir(tmp_path / "tiny")


def run(collection: Path, run_dir: Path, **options) -> list[dict]:
    generator = OpenAIGenerator(OpenAIOptions(model="served", **options))
    ctx = component_context(collection, work_dir=run_dir / "generate")
    generate_queries(ctx, generator, ctx.dir / "queries.jsonl")
    return [json.loads(line) for line in (ctx.dir / "queries.jsonl").read_text().splitlines()]


def check_complete(records: list[dict], per_doc: int = 1) -> None:
    """Every document exactly ``per_doc`` times, each query written for its own document."""
    assert sorted(r["query_id"] for r in records) == sorted(f"{d}-{i}" for d in DOCS for i in range(per_doc))
    for r in records:
        if r["query_id"].endswith("-0"):
            title, text = DOCS[r["doc_id"]]
            assert r["query"] == expected_query(f"{title} {text}")


def test_completions_records_follow_the_inpars_prompt(collection, tmp_path):
    with OpenAIServer() as server:
        records = run(collection, tmp_path / "run", api_base=server.url, batch_size=4, concurrency=3)
    check_complete(records)
    first = records[0]
    assert first["prompt_text"].startswith("Example 1:") and first["prompt_text"].endswith("Relevant Query:")
    assert first["log_probs"] == pytest.approx([-0.1 * (i + 1) for i in range(len(first["query"].split()))])
    assert first["score"] == pytest.approx(sum(first["log_probs"]) / len(first["log_probs"]))
    assert first["generator"] == "openai:served"
    assert {body["max_tokens"] for body in server.requests} == {64}
    assert {body["stop"][0] for body in server.requests} == {"\n"}


def test_chat_mode_sends_the_fewshot_examples_as_turns(collection, tmp_path):
    with OpenAIServer() as server:
        records = run(
            collection,
            tmp_path / "run",
            api_base=server.url,
            mode="chat",
            chat=True,
            instruction="Write a query.",
            num_queries_per_doc=2,
            temperature=0.7,
        )
    check_complete(records, per_doc=2)
    messages = server.requests[0]["messages"]
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert (
        messages[0]["content"] == "Write a query."
        and messages[2]["content"] == "Is a little caffeine ok during pregnancy?"
    )
    assert all(json.loads(r["prompt_text"]) in [body["messages"] for body in server.requests] for r in records)
    assert all(body["n"] == 2 and body["temperature"] == 0.7 for body in server.requests)


def test_chat_requests_send_the_prompts_messages_not_its_text(collection, tmp_path, monkeypatch):
    from inparsx_openai.generator import ApiTokenizer

    monkeypatch.setattr(
        ApiTokenizer,
        "apply_chat_template",
        staticmethod(lambda messages, **_: " | ".join(m["content"] for m in messages)),
    )
    with OpenAIServer() as server:
        records = run(
            collection, tmp_path / "run", api_base=server.url, mode="chat", chat=True, instruction="Write a query."
        )
    check_complete(records)
    assert all(not r["prompt_text"].startswith("[") for r in records)
    for record in records:
        sent = [
            body["messages"]
            for body in server.requests
            if " | ".join(m["content"] for m in body["messages"]) == record["prompt_text"]
        ]
        assert sent and sent[0][0] == {"role": "system", "content": "Write a query."}


def test_documents_are_cut_to_max_doc_tokens_words(collection, tmp_path):
    with OpenAIServer() as server:
        run(collection, tmp_path / "run", api_base=server.url, max_doc_tokens=3)
    last_documents = [body["prompt"].rsplit("Document:", 1)[1].split("\n")[0].split() for body in server.requests]
    assert max(len(words) for words in last_documents) == 3


@pytest.mark.parametrize("failure", ["status", "malformed"])
def test_half_the_requests_failing_loses_and_repeats_nothing(collection, tmp_path, failure):
    with OpenAIServer(failure=failure) as server:
        records = run(collection, tmp_path / "run", api_base=server.url, batch_size=4, concurrency=4, **FAST_RETRY)
    check_complete(records)
    assert server.failed >= len(DOCS) // 2 and len(server.requests) == len(DOCS) + server.failed


def test_a_request_failing_after_its_retries_keeps_the_finished_documents(collection, tmp_path):
    with OpenAIServer(failure="status") as server:
        with pytest.raises(InparsxError, match="request failed after 0 retries"):
            run(
                collection,
                tmp_path / "run",
                api_base=server.url,
                batch_size=4,
                concurrency=1,
                max_retries=0,
                backoff=0.01,
            )
    partial = tmp_path / "run" / "generate" / "queries.jsonl.partial"
    kept = [json.loads(line) for line in partial.read_text().splitlines()]
    assert kept and all(r["query"] == expected_query(" ".join(DOCS[r["doc_id"]])) for r in kept)


def test_a_client_error_is_reported_as_not_retried(collection, tmp_path):
    with OpenAIServer(failure="client") as server:
        with pytest.raises(InparsxError) as caught:
            run(collection, tmp_path / "run", api_base=server.url, batch_size=4, concurrency=1, **FAST_RETRY)
    sent = [json.dumps(body, sort_keys=True) for body in server.requests]
    assert len(sent) == len(set(sent)) >= 1  # a 400 is never retried ...
    assert "request not retried" in str(caught.value) and "retries" not in str(caught.value)  # ... nor said to be
    assert "max_tokens is too large" in str(caught.value)


def test_client_errors_are_not_retried():
    import httpx
    import openai

    request = httpx.Request("POST", "http://127.0.0.1/v1/completions")
    bad = openai.BadRequestError("bad", response=httpx.Response(400, request=request), body=None)
    busy = openai.RateLimitError("busy", response=httpx.Response(429, request=request), body=None)
    assert not is_transient(bad) and is_transient(busy) and not is_transient(KeyError("x"))


def test_chat_mode_needs_chat_prompts():
    with pytest.raises(ValueError, match="go together"):
        OpenAIOptions(model="m", mode="chat")


RUNNER = """
import json, sys
from inparsx.generate.stage import generate_queries
from inparsx.testing import component_context
from inparsx_openai.generator import OpenAIGenerator, OpenAIOptions
generator = OpenAIGenerator(OpenAIOptions(**json.loads(sys.argv[1])))
ctx = component_context(sys.argv[2], work_dir=f"{sys.argv[3]}/generate")
generate_queries(ctx, generator, ctx.dir / "queries.jsonl")
"""


def test_killed_run_resumes_without_loss_or_duplicates(collection, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGIN), os.environ.get("PYTHONPATH", "")])}
    run_dir = tmp_path / "run"
    partial = run_dir / "generate" / "queries.jsonl.partial"
    with OpenAIServer(failure="status", delay=0.15) as server:
        options = json.dumps(
            {"model": "served", "api_base": server.url, "batch_size": 2, "concurrency": 2, **FAST_RETRY}
        )
        args = [sys.executable, "-c", RUNNER, options, str(collection), str(run_dir)]
        first = subprocess.Popen(args, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not partial.exists() or len(partial.read_text().splitlines()) < 4):
            time.sleep(0.05)
        first.kill()
        first.wait()
        server.wait_idle()
        before = len(partial.read_text().splitlines())
        assert 4 <= before < len(DOCS)
        answered_before = server.answered
        subprocess.run(args, env=env, check=True)
    records = [json.loads(line) for line in (run_dir / "generate" / "queries.jsonl").read_text().splitlines()]
    check_complete(records)
    assert server.answered - answered_before == len(DOCS) - before  # only the documents without records


RECIPE = """
[recipe]
name = "openai"

[dataset]
name = "{dataset}"

[generate]
use = "openai"
model = "served"
api_base = "{url}"
batch_size = 4
backoff = 0.01

[filter]
use = ["copied"]
"""


def test_a_recipe_uses_the_installed_plugin(collection, tmp_path):
    import importlib.metadata

    names = {e.name: e.dist.metadata["Name"] for e in importlib.metadata.entry_points(group="inparsx")}
    assert names.get("openai") == "inparsx-openai", "install the plugin: pip install -e plugins/inparsx-openai"
    recipe = tmp_path / "openai.toml"
    with OpenAIServer(failure="status") as server:
        recipe.write_text(RECIPE.format(dataset=collection, url=server.url))
        subprocess.run(
            [sys.executable, "-m", "inparsx.cli.main", "run", str(recipe), "--run-dir", str(tmp_path / "run")],
            check=True,
            env={**os.environ, "INPARSX_NO_PROGRESS": "1"},
        )
    generated = [
        json.loads(line) for line in (tmp_path / "run" / "generate" / "queries.jsonl").read_text().splitlines()
    ]
    check_complete(generated)
    assert (tmp_path / "run" / "filter" / "queries.jsonl").is_file()


class TestOpenAIGeneratorContract(GeneratorContract):
    @pytest.fixture(autouse=True)
    def _server(self):
        with OpenAIServer(failure="status") as server:
            self.url = server.url
            yield

    def make_generator(self):
        return OpenAIGenerator(OpenAIOptions(model="served", api_base=self.url, batch_size=4, **FAST_RETRY))


def test_it_declares_only_the_tokenizer_it_loads(tmp_path):
    """The served model is not loaded here: the pre-flight check sees the tokenizer alone, when one is named."""
    assert OpenAIGenerator(OpenAIOptions(model="served")).models() == []
    (ref,) = OpenAIGenerator(OpenAIOptions(model="served", tokenizer=str(tmp_path / "tok"))).models()
    assert (ref.option, ref.model, ref.weights) == ("tokenizer", str(tmp_path / "tok"), False)
