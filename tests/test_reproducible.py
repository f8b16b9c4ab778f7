"""Two runs of one recipe with one seed give the same bytes in every output but timestamps and timings, even
when Python's string hashing differs between them (``PYTHONHASHSEED``: the order of a ``set``, e.g. peft's
``target_modules``, written into ``adapter_config.json``); and every output, the tune stage's included, has the
mode the umask gives (``mkstemp``/``mkdtemp`` make 0600 files and 0700 folders)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = """[recipe]
name = "reproducible"
seed = 5
[dataset]
name = "{data}"
[retrieve]
use = "bm25s"
k = 20
[tune]
use = "cpo"
base_model = "{llama}"
generator = {{ max_new_tokens = 5, max_doc_tokens = 24, dtype = "fp32", batch_size = 4 }}
n_docs = 5
n_candidates = 3
eval_docs = 0
judge = "mix"
judge_model = "{bert}"
judge_options = {{ max_length = 48, dtype = "fp32" }}
retriever = "bm25s"
depth = 10
lora_r = 2
lora_alpha = 4
lora_dropout = 0.0
target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
precision = "fp32"
max_steps = 1
batch_size = 2
max_length = 512
[generate]
use = "ict"
num_docs = 15
min_words = 2
remove_sentence = false
[filter]
use = ["length"]
min_tokens = 1
[triples]
use = "bm25-negatives"
depth = 10
retriever = "bm25s"
[train]
use = "cross-encoder"
base_model = "{bert}"
max_steps = 2
batch_size = 2
max_length = 48
precision = "fp32"
save_steps = 0
[rerank]
use = "cross-encoder"
model = "@train"
zero_shot_model = "{bert}"
depth = 5
max_length = 48
dtype = "fp32"
interpolate = 0.5
[evaluate]
metrics = ["ndcg@10", "recall@20"]
"""

TIMES = re.compile(r'"(\w*seconds|\w*per_s\w*|created|built_at|train_runtime|total_flos)": [^,\n}]+')
"""JSON fields that hold a time, a rate or a count of floating-point operations measured by the clock."""

STAMPS = re.compile(r'"(key|output|weights)": "[^"]+"|"(hashes)": \{[^}]*\}')
"""Cache keys and output stamps (:mod:`inparsx.pipeline`, :mod:`inparsx.cachekey`): hashes that cover file
modification times, and the markers' hash caches (sizes and modification times), so they differ with the
clock like a timestamp."""

VOLATILE = {"report.html"}
"""Files that state when they were made (the report's header) and embed figures of those times."""


def outputs(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run directory by relative path, timestamps and timings blanked."""
    found = {}
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        relative = str(path.relative_to(run_dir))
        if path.name in VOLATILE or relative.endswith(".lock"):
            continue
        data = path.read_bytes()
        if path.suffix in (".json", ".jsonl", ".md"):
            data = STAMPS.sub(lambda m: f'"{m.group(1) or m.group(2)}": _', data.decode()).encode()
        if path.suffix in (".json", ".md"):
            data = TIMES.sub(lambda m: f'"{m.group(1)}": _', data.decode()).encode()
            data = re.sub(rb"runtime: [\d.]+ s|on \d{4}-\d\d-\d\dT[\d:+]+", b"_", data)
        found[relative] = data
    return found


def off_umask(run_dir: Path) -> list[str]:
    """Files and folders under ``run_dir`` whose mode is not ``0666 & ~umask`` (files) or ``0777 & ~umask``."""
    mask = os.umask(0)
    os.umask(mask)
    return [
        f"{path.relative_to(run_dir)} {oct(path.stat().st_mode & 0o777)}"
        for path in run_dir.rglob("*")
        if path.stat().st_mode & 0o777 != (0o777 if path.is_dir() else 0o666) & ~mask
    ]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    from inparsx.testing import tiny_bert, tiny_llama

    folder = tmp_path_factory.mktemp("reproducible-models")
    return {"llama": str(tiny_llama(folder / "llama")), "bert": str(tiny_bert(folder / "bert"))}


def test_two_runs_with_one_seed_write_the_same_bytes(tmp_path, models):
    from inparsx.testing import tiny_beir

    data = tiny_beir(tmp_path / "beir")
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(data=data, **models))
    runs, run_dir, cache = [], tmp_path / "run", tmp_path / "cache"
    for hash_seed in ("1", "2"):  # the same paths both times (outputs name them); nothing cached from the first
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "INPARSX_CACHE": str(cache)}
        result = subprocess.run(
            [sys.executable, "-m", "inparsx.cli.main", "run", str(recipe), "--run-dir", str(run_dir)],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append(outputs(run_dir))
        assert not off_umask(run_dir)
        shutil.rmtree(run_dir)
        shutil.rmtree(cache, ignore_errors=True)
    first, second = runs
    assert "tune/adapter/adapter_config.json" in first and "train/model/model.safetensors" in first
    assert sorted(first) == sorted(second)
    differing = [name for name in first if first[name] != second[name]]
    assert not differing, " ".join(differing)
    config = json.loads(first["tune/adapter/adapter_config.json"])
    assert config["target_modules"] == sorted(config["target_modules"])
