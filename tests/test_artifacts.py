"""The declared artifacts (:mod:`inparsx.artifacts`): what each stage writes, read through the context, and a
scan that fails when stage or component code names another stage's file by a string literal."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from inparsx import artifacts
from inparsx.artifacts import ARTIFACTS, RUN, SYNTHETIC_QUERIES, TRAINED_MODEL, Artifact, artifact
from inparsx.errors import InparsxError
from inparsx.recipe import STAGES
from inparsx.testing import component_context, tiny_beir

ROOT = Path(__file__).resolve().parent.parent

ALLOWED = {
    ("inparsx/datasets", "queries.jsonl"): "a BEIR collection's own queries file, not a stage's output",
    ("inparsx/sweep/report.py", "table.txt"): "the sweep's own table beside its runs, not a stage's output",
    ("inparsx/testing/collections.py", "queries.jsonl"): "a tiny BEIR collection's queries file",
}
"""(path prefix, file name) -> why a literal artifact file name is not another stage's file there."""


def sources() -> list[Path]:
    """Stage and component code: every module of the package and of the plugins, without their tests."""
    found = sorted((ROOT / "inparsx").rglob("*.py")) + sorted((ROOT / "plugins").glob("*/*/**/*.py"))
    return [p for p in found if "tests" not in p.relative_to(ROOT).parts and p.name != "artifacts.py"]


def writers() -> dict[str, set[str]]:
    """File name -> the stages that declare an artifact of that name (``None`` for any stage)."""
    found: dict[str, set[str]] = {}
    for item in ARTIFACTS:
        found.setdefault(item.file, set()).add(item.stage or "*")
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            ids.add(id(body[0].value))
    return ids


def _strings(node: ast.AST) -> list[str]:
    return [node.value] if isinstance(node, ast.Constant) and isinstance(node.value, str) else []


def literal_file_names(relative: str, text: str) -> list[str]:
    """Where the module ``relative`` (its path in the repository) of source ``text`` names another stage's
    file by a literal: ``"<stage>/<file>"`` strings (also as an f-string's start), ``x / "<stage>" / y``
    paths, ``.output(stage, "<file>")`` and ``.resolve_model(v, "<file>")`` calls, and a declared artifact's
    file name outside the stage(s) that write it."""
    parts = relative.split("/")
    package = parts[1] if parts[0] == "inparsx" and len(parts) > 2 else None
    tree = ast.parse(text)
    docstrings, names, found = _docstrings(tree), writers(), []
    for node in ast.walk(tree):
        where = f"{relative}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            head = node.value.split("/", 1)[0]
            if "/" in node.value and head in STAGES and not node.value.startswith(f"{package}/"):
                found.append(f"{where}: {node.value!r}")
            stages = names.get(node.value)
            if stages and "*" not in stages and package not in stages and node.value != artifacts.MODEL:
                if not any(relative.startswith(prefix) and node.value == name for prefix, name in ALLOWED):
                    found.append(f"{where}: {node.value!r} (a file of {', '.join(sorted(stages))})")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.left, ast.BinOp):
            for stage in _strings(node.left.right):
                if stage in STAGES and stage != package:
                    found.append(f"{where}: / {stage!r} / ...")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and len(node.args) >= 2:
            if node.func.attr in ("output", "resolve_model") and _strings(node.args[1]):
                found.append(f"{where}: .{node.func.attr}(..., {node.args[1].value!r})")
    return found


def test_no_stage_or_component_code_names_another_stages_file_by_a_literal():
    found = [
        hit
        for path in sources()
        for hit in literal_file_names(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"))
    ]
    assert not found, "use the artifacts of inparsx.artifacts (ctx.path_of / ctx.read):\n" + "\n".join(found)


def test_the_scan_finds_each_kind_of_literal():
    """The scan is not vacuous: each pattern it looks for, written in a stage module, is reported."""
    code = (
        "def f(ctx, run_dir):\n"
        '    a = ctx.output("retrieve", "run.trec")\n'
        '    b = run_dir / "evaluate" / "x.json"\n'
        '    c = "filter/summary.json"\n'
        '    d = ctx.resolve_model("@tune", "program.json")\n'
        '    e = run_dir / "triples.jsonl"\n'
        '    return run_dir / "scores.jsonl"  # its own file: fine\n'
    )
    hits = literal_file_names("inparsx/rerank/probe.py", code)
    assert len(hits) == 6, hits  # program.json twice: the call, and the name of a tune file
    assert any("'triples.jsonl' (a file of triples)" in hit for hit in hits)
    assert not any("scores.jsonl" in hit for hit in hits)


def test_artifact_names_are_unique_and_each_has_a_stage_of_the_pipeline():
    assert len({a.name for a in ARTIFACTS}) == len(ARTIFACTS)
    assert all(a.stage is None or a.stage in STAGES for a in ARTIFACTS)
    assert artifact("synthetic-queries") is SYNTHETIC_QUERIES
    with pytest.raises(KeyError, match="no artifact 'nope'"):
        artifact("nope")


def test_the_context_reads_an_earlier_stages_artifact_and_names_a_missing_one(tmp_path):
    generate = tmp_path / "run" / "generate"
    generate.mkdir(parents=True)
    (generate / SYNTHETIC_QUERIES.file).write_text('{"query_id": "q1", "doc_id": "d1", "query": "why?"}\n')
    (tmp_path / "run" / "retrieve").mkdir()
    (tmp_path / "run" / "retrieve" / RUN.file).write_text("q1 Q0 d1 1 2.5 t\n")
    ctx = component_context(
        tiny_beir(tmp_path / "data"),
        work_dir=tmp_path / "run" / "rerank",
        stage="rerank",
        outputs={s: tmp_path / "run" / s for s in ("retrieve", "generate", "train")},
    )
    assert [r.query for r in ctx.read(SYNTHETIC_QUERIES)] == ["why?"]
    assert ctx.read(RUN, "retrieve") == {"q1": {"d1": 2.5}}
    with pytest.raises(InparsxError, match=r"needs .*train/model, the output of stage 'train' \(the trained reranker"):
        ctx.path_of(TRAINED_MODEL)
    with pytest.raises(InparsxError, match="has no reader: use its path"):
        TRAINED_MODEL.read(tmp_path)
    with pytest.raises(InparsxError, match="written by any stage: say whose"):
        ctx.path_of(RUN)
    with pytest.raises(InparsxError, match="cannot read the output of stage 'tune'"):
        ctx.path_of(Artifact("x", "tune", "x.json", "x"))
