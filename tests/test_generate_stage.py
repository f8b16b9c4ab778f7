"""The generate stage as users run it: resumption after SIGKILL of a real ``inparsx run``, data parallel under
torchrun (what ``accelerate launch`` sets up), few-shot ids dropped by the evaluate stage, ``inparsx generate``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from inparsx.datasets.beir import BeirFolderDataset
from inparsx.generate.stage import Shards, generate_queries
from inparsx.pipeline import EXCLUDED_QIDS, StageContext, run_recipe
from inparsx.plugins import get_registry
from inparsx.recipe import validate_recipe
from inparsx.records import SyntheticQuery
from inparsx.testing import tiny_llama, train_tokenizer


@pytest.fixture(scope="module")
def llama(scifact, tmp_path_factory) -> str:
    texts = [doc.full_text for _, doc in zip(range(200), scifact.docs_iter())]
    return str(tiny_llama(tmp_path_factory.mktemp("llama") / "m", train_tokenizer(texts, vocab_size=800)))


def recipe_data(dataset: str, generate: dict, **stages) -> dict:
    return {"recipe": {"name": "t", "seed": 1}, "dataset": {"name": dataset}, "generate": generate, **stages}


def in_process(run_dir: Path, dataset, **options) -> list[dict]:
    recipe = validate_recipe(recipe_data("beir:scifact", {"use": "hf", **options}), "test", "", get_registry())
    name, opts = recipe.stages["generate"].components[0]
    ctx = StageContext(recipe, "generate", run_dir, [get_registry().get("generators", name)(opts)], _dataset=dataset)
    generate_queries(ctx.component_context(), ctx.component, ctx.dir / "queries.jsonl")
    return read(ctx.dir / "queries.jsonl")


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def env() -> dict[str, str]:
    return {**os.environ, "INPARSX_NO_PROGRESS": "1", "PYTHONUNBUFFERED": "1"}


def test_a_killed_run_resumes_without_duplicates_or_gaps(llama, scifact, tmp_path):
    # enough documents that the run is still going when it is killed after its third (a tiny model writes
    # 10 documents faster than the parent can react on an idle machine)
    n_docs = 100
    recipe = tmp_path / "resume.toml"
    recipe.write_text(
        textwrap.dedent(f"""\
        [recipe]
        name = "resume"
        seed = 1
        [dataset]
        name = "beir:scifact"
        [generate]
        use = "hf"
        model = "{llama}"
        num_docs = {n_docs}
        batch_size = 1
        max_new_tokens = 8
        max_doc_tokens = 64
        """)
    )
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "inparsx.cli.main", "run", str(recipe), "--run-dir", str(run_dir)]
    partial = run_dir / "generate" / "queries.jsonl.partial"
    process = subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if partial.exists() and partial.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.05)
    process.kill()  # SIGKILL: no cleanup, no finally blocks
    process.wait()
    assert not (run_dir / "generate" / "queries.jsonl").exists(), "the run finished before it was killed"
    survived = partial.read_bytes().count(b"\n")
    assert 3 <= survived < n_docs
    rerun = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming" in rerun.stderr and not partial.exists()
    resumed = read(run_dir / "generate" / "queries.jsonl")
    reference = in_process(
        tmp_path / "reference", scifact, model=llama, num_docs=n_docs, batch_size=8, max_new_tokens=8, max_doc_tokens=64
    )
    assert len({r["doc_id"] for r in resumed}) == len(resumed) == n_docs
    assert [r["doc_id"] for r in resumed] == [r["doc_id"] for r in reference]
    assert [r["query"] for r in resumed] == [r["query"] for r in reference]


def test_data_parallel_shards_merge_into_the_single_process_output(llama, scifact, tmp_path):
    script = tmp_path / "shard.py"
    script.write_text(
        textwrap.dedent(f"""\
        import sys
        from pathlib import Path
        from inparsx.generate.stage import generate_queries
        from inparsx.pipeline import StageContext
        from inparsx.plugins import get_registry
        from inparsx.recipe import validate_recipe
        data = {{"recipe": {{"name": "dp", "seed": 1}}, "dataset": {{"name": "beir:scifact"}},
                 "generate": {{"use": "hf", "model": {llama!r}, "num_docs": 10, "batch_size": 2, "max_new_tokens": 4}}}}
        recipe = validate_recipe(data, "dp", "", get_registry())
        name, options = recipe.stages["generate"].components[0]
        ctx = StageContext(recipe, "generate", Path(sys.argv[1]), [get_registry().get("generators", name)(options)])
        generate_queries(ctx.component_context(), ctx.component, ctx.dir / "queries.jsonl")
        """)
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(tmp_path / "dp"),
    ]
    result = subprocess.run(command, env={**env(), "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    merged = read(tmp_path / "dp" / "generate" / "queries.jsonl")
    single = in_process(tmp_path / "single", scifact, model=llama, num_docs=10, batch_size=2, max_new_tokens=4)
    assert [r["doc_id"] for r in merged] == [r["doc_id"] for r in single]
    assert [r["query"] for r in merged] == [r["query"] for r in single]
    assert not list((tmp_path / "dp" / "generate").glob("*.partial"))


def test_shard_files_of_a_crashed_parallel_run_are_merged_on_resume(tmp_path, monkeypatch):
    from inparsx.io import ResumableJsonl

    out = tmp_path / "queries.jsonl"
    ResumableJsonl(Shards.part_path(out, 1)).append([{"doc_id": "b", "query": "q"}])
    ResumableJsonl(out).append([{"doc_id": "a", "query": "p"}])
    from inparsx.generate.stage import _merge_shards

    main = ResumableJsonl(out)
    _merge_shards(main, Shards())
    assert [r["doc_id"] for r in main.existing()] == ["a", "b"]
    assert not Shards.part_path(out, 1).with_name(Shards.part_path(out, 1).name + ".partial").exists()


def test_fewshot_ids_from_the_evaluated_split_are_dropped_by_evaluation(llama, scifact_small, tmp_path):
    folder = tmp_path / "scifact-test-only"
    shutil.copytree(scifact_small, folder)
    (folder / "qrels" / "train.tsv").unlink()  # no train split: examples must come from test
    dataset = BeirFolderDataset(folder)
    qrels = dataset.qrels("test")
    run_dir = tmp_path / "run"
    (run_dir / "retrieve").mkdir(parents=True)
    (run_dir / "retrieve" / "run.trec").write_text(
        "".join(f"{qid} Q0 {doc} 1 1.0 t\n" for qid, docs in qrels.items() for doc in docs)
    )
    generate = {
        "use": "hf",
        "model": llama,
        "prompt": "promptagator",
        "template": "promptagator-scifact",
        "num_docs": 5,
        "max_new_tokens": 3,
        "batch_size": 5,
    }
    recipe = validate_recipe(
        recipe_data(str(folder), generate, evaluate={"metrics": ["ndcg@10"]}), "t", "", get_registry()
    )
    run_recipe(recipe, run_dir)
    records = read(run_dir / "generate" / "queries.jsonl")
    used = {qid for r in records for qid in r["fewshot_examples"]}
    listed = (run_dir / "generate" / EXCLUDED_QIDS).read_text().split()
    assert len(used) == 3 and sorted(used) == listed and used <= set(qrels)
    assert StageContext(recipe, "evaluate", run_dir, []).excluded_qids() == used
    per_query = json.loads((run_dir / "evaluate" / "per_query.json").read_text())
    evaluated = set(per_query["retrieve"]["ndcg@10"])
    assert evaluated == set(qrels) - used


def test_no_exclusion_file_when_examples_come_from_train(llama, scifact, tmp_path):
    records = in_process(tmp_path, scifact, model=llama, prompt="promptagator", num_docs=2, max_new_tokens=2)
    assert all(len(r["fewshot_examples"]) == 3 for r in records)
    assert not (tmp_path / "generate" / EXCLUDED_QIDS).exists()
    assert json.loads((tmp_path / "generate" / "queries.stats.json").read_text())["fewshot_split"] == "train"


def test_generate_command(tmp_path):
    out = tmp_path / "ict.jsonl"
    command = [
        sys.executable,
        "-m",
        "inparsx.cli.main",
        "generate",
        "--dataset",
        "beir:scifact",
        "--use",
        "ict",
        "--set",
        "num_docs=40",
        "--set",
        "min_words=6",
        "--out",
        str(out),
    ]
    result = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    records = read(out)
    assert 35 <= len(records) <= 40
    assert result.stdout.strip() == f"{out}: {len(records)} queries for {len(records)} documents"
    assert all(len(r["query"].split()) >= 6 for r in records)
    again = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "--force" in again.stderr
    bad = subprocess.run(
        command[:-2] + ["--set", "min_word=3", "--out", str(tmp_path / "x.jsonl")],
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "generate.min_word" in bad.stderr and "unknown key" in bad.stderr


def test_generate_modules_do_not_import_heavy_libraries():
    code = (
        "import sys, inparsx.generate.plugins, inparsx.generate.hf, inparsx.generate.ict, inparsx.generate.stage, "
        "inparsx.generate.cli; heavy = [m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules]; "
        "print(heavy); sys.exit(bool(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


class TwoOrOne:
    """A generator of at most two records per document: two for d01, d03, ..., one for the others (as a
    generator that drops an empty or repeated sample would), two documents per batch; ``asked`` counts the
    documents it was asked for, ``stop_after`` interrupts it after that many batches."""

    def __init__(self, stop_after: int | None = None, most: int = 2):
        from inparsx.generate.base import Generator

        class Gen(Generator):
            name = "two-or-one"

            @property
            def queries_per_doc(self) -> int:
                return most

            def generate(gen, docs, ctx):
                for start in range(0, len(docs), 2):
                    if stop_after is not None and start // 2 == stop_after:
                        raise KeyboardInterrupt
                    self.asked += [doc.doc_id for doc in docs[start : start + 2]]
                    yield [
                        SyntheticQuery(f"{doc.doc_id}-{k}", doc.doc_id, f"q{k} {doc.title}")
                        for doc in docs[start : start + 2]
                        for k in range(2 if int(doc.doc_id[1:]) % 2 else 1)
                    ]

        self.asked: list[str] = []
        self.generator = Gen(Gen.Options(num_docs=15))


def _interrupted(ctx, stop_after: int) -> list[str]:
    fake = TwoOrOne(stop_after=stop_after)
    with pytest.raises(KeyboardInterrupt):
        generate_queries(ctx, fake.generator, ctx.dir / "queries.jsonl")
    return fake.asked


def test_queries_per_doc_is_a_maximum_documents_with_fewer_records_are_not_redone(tmp_path):
    from inparsx.testing import component_context, tiny_beir

    ctx = component_context(tiny_beir(tmp_path / "data"), work_dir=tmp_path / "generate")
    first = _interrupted(ctx, stop_after=3)
    fake = TwoOrOne()
    generate_queries(ctx, fake.generator, ctx.dir / "queries.jsonl")
    records = read(ctx.dir / "queries.jsonl")
    # the last document of the interrupted file has one record, fewer than the most: it alone is redone
    assert fake.asked[0] == first[-1] and not set(fake.asked[1:]) & set(first)
    assert len(first) + len(fake.asked) - 1 == 15
    whole = TwoOrOne()
    generate_queries(
        component_context(ctx.dataset, work_dir=tmp_path / "whole"),
        whole.generator,
        tmp_path / "whole" / "queries.jsonl",
    )
    assert records == read(tmp_path / "whole" / "queries.jsonl")


def test_a_document_cut_short_by_a_torn_write_is_redone(tmp_path):
    from inparsx.testing import component_context, tiny_beir

    ctx = component_context(tiny_beir(tmp_path / "data"), work_dir=tmp_path / "generate")
    _interrupted(ctx, stop_after=3)
    partial = ctx.dir / "queries.jsonl.partial"
    lines = partial.read_text().splitlines(keepends=True)
    last = json.loads(lines[-1])["doc_id"]
    assert sum(json.loads(line)["doc_id"] == last for line in lines) == 1
    partial.write_text("".join(lines[:-2]) + lines[-2][:10])  # torn inside the next-to-last document's records
    torn = json.loads(lines[-2])["doc_id"]
    fake = TwoOrOne()
    generate_queries(ctx, fake.generator, ctx.dir / "queries.jsonl")
    assert torn in fake.asked and last in fake.asked
    records = read(ctx.dir / "queries.jsonl")
    assert sorted(r["query_id"] for r in records) == sorted({r["query_id"] for r in records})
    assert sum(r["doc_id"] == torn for r in records) == (2 if int(torn[1:]) % 2 else 1)


def test_more_records_for_a_document_than_queries_per_doc_is_an_error(tmp_path):
    from inparsx.errors import PluginError
    from inparsx.testing import component_context, tiny_beir

    ctx = component_context(tiny_beir(tmp_path / "data"), work_dir=tmp_path / "generate")
    with pytest.raises(
        PluginError,
        match=r"'two-or-one' wrote 2 records for document d\d+, more than its "
        r"queries_per_doc = 1",
    ):
        generate_queries(ctx, TwoOrOne(most=1).generator, ctx.dir / "queries.jsonl")
