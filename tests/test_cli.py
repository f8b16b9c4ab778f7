"""The CLI: fast commands import no heavy library; validate reports one clear line per problem, exit code 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inparsx.cli.main import app, main

HEAVY = (
    "torch",
    "transformers",
    "pyserini",
    "ranx",
    "sentence_transformers",
    "dspy",
    "bm25s",
    "ir_datasets",
    "numba",
    "jnius",
)
ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "inparsx.cli.main", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


@pytest.mark.parametrize("args", [["--help"], ["plugins"], ["plugins", "--json"]])
def test_fast_commands_import_no_heavy_library(args):
    code = (
        f"import sys\nsys.argv = ['inparsx', *{args!r}]\nfrom inparsx.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    )
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - began
    assert "HEAVY=\n" in result.stderr or result.stderr.rstrip().endswith("HEAVY="), result.stderr
    assert elapsed < 10  # about a second normally; generous for a loaded CI machine


def test_plugins_lists_every_kind_with_package_and_version():
    result = CliRunner().invoke(app, ["plugins", "--json"])
    rows = json.loads(result.stdout)
    kinds = {row["kind"] for row in rows}
    assert {"datasets", "retrievers", "generators", "filters", "miners", "trainers", "rerankers", "evaluators"} <= kinds
    from inparsx import __version__

    builtin = [row for row in rows if row["package"] == "inparsx"]
    assert builtin and all(row["version"] == __version__ for row in builtin)
    shipped = {row["package"]: row["version"] for row in rows if row["package"] != "inparsx"}
    assert shipped == {"inparsx-openai": "0.1.0", "inparsx-titles": "0.1.0"}  # plugins/, installed by make setup
    names = {(row["kind"], row["name"]) for row in rows}
    assert {("retrievers", "bm25"), ("retrievers", "bm25s"), ("evaluators", "ranx")} <= names


BROKEN = {
    "misspelled": ("k_1 = 0.9", "retrieve.k_1: unknown key", "did you mean 'k1'"),
    "wrongtype": ('k = "all"', "retrieve.k:", "'all'"),
    "unknownplugin": ("", "retrieve.use: unknown retriever 'bm52'", "did you mean 'bm25'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_validate_gives_one_clear_line_exit_2(tmp_path, case):
    line, expected, suggestion = BROKEN[case]
    use = "bm52" if case == "unknownplugin" else "bm25"
    path = tmp_path / f"{case}.toml"
    path.write_text(f'[recipe]\nname = "x"\n\n[dataset]\nname = "beir:scifact"\n\n[retrieve]\nuse = "{use}"\n{line}\n')
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"error: {path}:") and expected in lines[0] and suggestion in lines[0]


def test_shipped_recipes_validate():
    recipes = sorted((ROOT / "recipes").glob("*.toml"))
    assert recipes
    for recipe in recipes:
        result = run_cli("validate", str(recipe))
        assert result.returncode == 0, result.stderr
        assert "valid" in result.stdout


def test_bad_set_override_is_clear(tmp_path):
    result = run_cli("validate", str(ROOT / "recipes" / "scifact-bm25.toml"), "--set", "retrieve.k1")
    assert result.returncode == 2 and "error: --set: retrieve.k1: expected dotted.key=value" in result.stderr


def test_main_turns_errors_into_exit_code_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["inparsx", "run", str(tmp_path / "missing.toml")])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2 and "cannot read recipe" in capsys.readouterr().err


def test_plugin_descriptions_are_plain_text():
    from inparsx.cli.main import summary_line

    assert summary_line("``beir:<name>``: the folder ``$HOME``.\n\nMore.") == "beir:<name>: the folder $HOME."
    assert summary_line(None) == "" and summary_line("  \n") == ""


@pytest.mark.parametrize(
    "args", [["check", "beir:scifact"], ["run", "recipes/scifact-bm25.toml", "--run-dir", "{tmp}"]]
)
def test_no_data_home_and_no_network_is_one_line_and_exit_2(tmp_path, args):
    env = {k: v for k, v in os.environ.items() if k not in ("INPARSX_DATA_HOME", "no_proxy", "NO_PROXY")}
    env.update(
        IR_DATASETS_HOME=str(tmp_path / "ir_datasets"),
        https_proxy="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
    )  # no network: every request goes to a closed port
    result = subprocess.run(
        [sys.executable, "-m", "inparsx.cli.main", *(a.format(tmp=tmp_path / "run") for a in args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: dataset beir:scifact: $INPARSX_DATA_HOME is not set")
    assert (
        "ir_datasets could not download https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/"
        "scifact.zip (the proxy refused the connection)" in lines[0]
    )
    assert "set INPARSX_DATA_HOME to a folder holding beir/scifact/corpus.jsonl" in lines[0]
    assert f"ir_datasets then keeps it in {tmp_path / 'ir_datasets'}" in lines[0]


def test_plugin_descriptions_end_at_a_sentence():
    from inparsx.cli.main import summary_line
    from inparsx.plugins import get_registry

    cpo = get_registry().get("tuners", "cpo")
    assert summary_line(cpo.__doc__).endswith("(see the module docstring).")  # its first line stops mid-sentence
    assert summary_line("Scores pairs, e.g. BM25 pairs. More text.") == "Scores pairs, e.g. BM25 pairs."
    assert (
        summary_line("Uses :func:`inparsx.a.b` and :class:`~inparsx.c.D`, no end") == "Uses inparsx.a.b and D, no end"
    )
    result = CliRunner().invoke(app, ["plugins", "--json"])
    for row in json.loads(result.stdout):
        assert row["description"].endswith((".", ")")), row  # every listed description is a whole sentence
        assert "``" not in row["description"] and ":func:" not in row["description"]


@pytest.mark.parametrize(
    "command",
    ["eval", "filter", "generate", "train", "rerank", "retrieve", "run", "check", "report", "validate", "plugins"],
)
def test_help_reads_as_text(command):
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    text = result.stdout
    assert result.exit_code == 0, text
    assert "``" not in text and ":func:" not in text and ":class:" not in text  # no reStructuredText
    assert "<bool>" not in text  # a flag takes no value
    assert not re.search(r"\{[a-z_]+\}", text.split("Usage:", 1)[1].splitlines()[0])  # positionals as NAME
    if command == "eval":
        assert "the same validated [evaluate] table" in text  # rich markup no longer swallows it
    if command == "filter":
        assert "Usage: inparsx filter [OPTIONS] QUERIES" in text and "[recipe] table" in text
