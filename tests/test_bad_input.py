"""Bad bytes and bad ranges: each case is one line on stderr naming what and where, exit code 2, no traceback."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from inparsx.cli.main import main

RECIPE = """[recipe]
name = "café"
[dataset]
name = "{data}"
[retrieve]
use = "bm25s"
k = 10
[generate]
use = "ict"
min_words = 2
[evaluate]
metrics = ["ndcg@10"]
"""


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Run ``inparsx ARGS`` in this process: ``(exit code, stderr)``; stdout is kept in ``cli.out``."""
    monkeypatch.setattr(sys, "argv", ["inparsx", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    cli.out = captured.out
    return code, captured.err


def one_line_error(code: int, err: str, *expected: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err, err
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, err
    for text in expected:
        assert text in errors[0], errors[0]


@pytest.fixture()
def beir(tmp_path) -> Path:
    from inparsx.testing import tiny_beir

    return tiny_beir(tmp_path / "beir")


@pytest.mark.parametrize(
    "encode, expected",
    [
        (lambda text: text.encode("latin-1"), ["r.toml:2: a recipe must be UTF-8 text", "byte 0xe9"]),
        (lambda text: text.encode("utf-16"), ["r.toml: a recipe must be UTF-8 text", "UTF-16 text, not UTF-8"]),
        (lambda text: gzip.compress(text.encode()), ["r.toml: a recipe must be UTF-8 text", "gzip-compressed"]),
    ],
)
def test_a_recipe_that_is_not_utf8(tmp_path, beir, monkeypatch, capsys, encode, expected):
    path = tmp_path / "r.toml"
    path.write_bytes(encode(RECIPE.format(data=beir)))
    one_line_error(*cli(monkeypatch, capsys, "validate", str(path)), *expected)


def test_a_recipe_with_a_utf8_byte_order_mark_is_read(tmp_path, beir, monkeypatch, capsys):
    path = tmp_path / "r.toml"
    path.write_bytes(b"\xef\xbb\xbf" + RECIPE.format(data=beir).encode())  # as some Windows editors save it
    code, err = cli(monkeypatch, capsys, "validate", str(path))
    assert code == 0 and "valid (café" in cli.out, err


def test_undecodable_bytes_in_a_corpus(tmp_path, beir, monkeypatch, capsys):
    corpus = beir / "corpus.jsonl"
    lines = corpus.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"text": "', b'"text": "\xff', 1)
    corpus.write_bytes(b"".join(lines))
    code, err = cli(
        monkeypatch, capsys, "generate", "--dataset", str(beir), "--use", "ict", "--out", str(tmp_path / "q.jsonl")
    )
    one_line_error(code, err, "corpus.jsonl:3: not UTF-8: byte 0xff at byte column", "save it as UTF-8")


def test_a_stage_output_torn_inside_a_character(tmp_path, beir, monkeypatch, capsys):
    queries = tmp_path / "queries.jsonl"
    good = {"query_id": "a-0", "doc_id": "d1", "query": "what is café"}
    text = (json.dumps(good, ensure_ascii=False) + "\n").encode()
    torn = json.dumps({**good, "query_id": "b-0", "query": "é"}, ensure_ascii=False).encode()
    queries.write_bytes(text + torn[: torn.index("é".encode()) + 1] + b'"}\n')  # one byte of a two-byte character
    code, err = cli(
        monkeypatch,
        capsys,
        "filter",
        str(queries),
        "--dataset",
        str(beir),
        "--run-dir",
        str(tmp_path / "run"),
        "--use",
        "length",
    )
    one_line_error(code, err, "queries.jsonl:2: not UTF-8")


def test_a_torn_json_output_read_by_report(tmp_path, monkeypatch, capsys):
    from inparsx.pipeline import DONE_MARKER

    run = tmp_path / "run"
    (run / "filter").mkdir(parents=True)
    (run / "recipe.toml").write_text('[recipe]\nname = "x"\n')
    (run / "filter" / DONE_MARKER).write_text("{}")
    (run / "filter" / "summary.json").write_text('{"input": 3, "kept": 2, "filters": [{"filter": "len')
    one_line_error(
        *cli(monkeypatch, capsys, "report", str(run)), "filter/summary.json:1: not valid JSON", "torn by a crash?"
    )


def test_a_model_that_cannot_be_loaded_is_named(tmp_path, beir, monkeypatch, capsys):
    triples = tmp_path / "t.jsonl"
    triples.write_text(
        json.dumps(
            {"query_id": "q", "query": "a", "pos_id": "d1", "pos_text": "b", "neg_ids": ["d2"], "neg_texts": ["c"]}
        )
        + "\n"
    )
    code, err = cli(
        monkeypatch,
        capsys,
        "train",
        "--triples",
        str(triples),
        "--out",
        str(tmp_path / "m"),
        "--set",
        "base_model=org/no-such-model",
    )
    one_line_error(code, err, "train.base_model = 'org/no-such-model' is missing")  # found missing before loading
    assert "(unknown path)" not in err
    run = tmp_path / "run.trec"
    run.write_text("".join(f"q{i} Q0 d{i} 1 1.0 bm25\n" for i in range(1, 3)))
    code, err = cli(
        monkeypatch,
        capsys,
        "rerank",
        "--run",
        str(run),
        "--dataset",
        str(beir),
        "--model",
        "org/no-such-reranker",
        "--out",
        str(tmp_path / "out.trec"),
    )
    one_line_error(code, err, "'org/no-such-reranker' is missing")


def test_from_after_to_runs_nothing_and_says_so(tmp_path, beir, monkeypatch, capsys):
    path = tmp_path / "r.toml"
    path.write_text(RECIPE.format(data=beir))
    one_line_error(
        *cli(
            monkeypatch,
            capsys,
            "run",
            str(path),
            "--run-dir",
            str(tmp_path / "run"),
            "--from",
            "evaluate",
            "--to",
            "retrieve",
        ),
        "--from evaluate comes after --to retrieve",
        "retrieve -> generate -> evaluate",
    )
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
