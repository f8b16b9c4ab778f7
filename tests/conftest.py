"""Shared fixtures: offline settings, the real SciFact copy, small real subsets, an isolated cache."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from inparsx.datasets.beir import BeirFolderDataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("INPARSX_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DSPY_CACHEDIR", tempfile.mkdtemp(prefix="inparsx-dspy-cache-"))
# ir_datasets fixes its home when first imported: one empty home for the whole session, set before any import
os.environ["IR_DATASETS_HOME"] = tempfile.mkdtemp(prefix="inparsx-irds-home-")


def _data_home() -> Path:
    home = os.environ.get("INPARSX_DATA_HOME")
    if not home or not (Path(home) / "beir" / "scifact" / "corpus.jsonl").is_file():
        raise RuntimeError(
            "set INPARSX_DATA_HOME to a folder holding beir/scifact (the real BEIR SciFact copy); .ci/run sets it"
        )
    return Path(home)


def pytest_configure(config: pytest.Config) -> None:
    """Point the prompt templates at the data home's local copy unless the environment already chose one."""
    home = os.environ.get("INPARSX_DATA_HOME")
    if home and not os.environ.get("INPARSX_PROMPTS_FILE"):
        os.environ["INPARSX_PROMPTS_FILE"] = str(Path(home) / "prompts" / "inpars_templates.yaml")


@pytest.fixture(scope="session")
def data_home() -> Path:
    """The folder holding ``beir/scifact`` and ``prompts/``."""
    return _data_home()


@pytest.fixture(scope="session")
def scifact_dir(data_home: Path) -> Path:
    """The real BEIR SciFact folder."""
    return data_home / "beir" / "scifact"


@pytest.fixture(scope="session")
def scifact(scifact_dir: Path) -> BeirFolderDataset:
    """The real SciFact collection (5,183 documents; train and test queries and qrels)."""
    return BeirFolderDataset(scifact_dir, name="beir:scifact")


@pytest.fixture(scope="session")
def prompts_file(data_home: Path) -> Path:
    """The InPars toolkit's prompt templates (a local copy of upstream templates.yaml)."""
    return data_home / "prompts" / "inpars_templates.yaml"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Indexes and embeddings are cached in a per-session folder, never in the user's cache."""
    os.environ["INPARSX_CACHE"] = str(tmp_path_factory.mktemp("inparsx-cache"))


@pytest.fixture(scope="session")
def scifact_small(scifact_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BEIR folder with 30 test queries of real SciFact, their judged documents and 200 more real documents."""
    return make_subset(scifact_dir, tmp_path_factory.mktemp("scifact-small"), n_queries=30, n_extra_docs=200)


def make_subset(source: Path, target: Path, n_queries: int, n_extra_docs: int) -> Path:
    """Copy a real subset of a BEIR folder: the first ``n_queries`` test and train queries, every document they
    judge, and the first ``n_extra_docs`` other documents of the corpus (all with their real text)."""
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    keep_docs: set[str] = set()
    keep_queries: set[str] = set()
    for split in ("train", "test"):
        lines = (source / "qrels" / f"{split}.tsv").read_text().splitlines()
        rows = [line.split("\t") for line in lines[1:]]
        qids = list(dict.fromkeys(r[0] for r in rows))[:n_queries]
        kept = [r for r in rows if r[0] in qids]
        keep_queries.update(qids)
        keep_docs.update(r[1] for r in kept)
        (target / "qrels" / f"{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in kept)
        )
    with open(source / "corpus.jsonl") as src, open(target / "corpus.jsonl", "w") as dst:
        extra = 0
        for line in src:
            doc_id = json.loads(line)["_id"]
            if doc_id in keep_docs or extra < n_extra_docs:
                extra += doc_id not in keep_docs
                dst.write(line)
    with open(source / "queries.jsonl") as src, open(target / "queries.jsonl", "w") as dst:
        dst.writelines(line for line in src if json.loads(line)["_id"] in keep_queries)
    return target


@pytest.fixture(scope="session")
def tiny_word_models(scifact_small: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A tiny random Llama whose tokenizer holds SciFact words (so random queries hold words BM25 can match)
    and whose larger random weights make its output depend on its prompt, and a tiny BERT."""
    from inparsx.testing import tiny_bert, tiny_llama, train_tokenizer

    folder = tmp_path_factory.mktemp("tiny-word-models")
    words = train_tokenizer([d.full_text for d in BeirFolderDataset(scifact_small).docs_iter()], vocab_size=1500)
    return {
        "llama": str(tiny_llama(folder / "llama", tokenizer=words, initializer_range=0.5)),
        "bert": str(tiny_bert(folder / "bert")),
    }
