"""Plugins: third-party packages found through the `inparsx` entry-point group, exactly like the built-ins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from inparsx.errors import PluginError
from inparsx.plugins import Registry, get_plugin_manager, unknown_name_message
from inparsx.testing.plugins import plugin_module

THIRD_PARTY = '''
import inparsx
from inparsx.retrieve.base import Retriever


class Echo(Retriever):
    """Returns the query id as its only document."""

    name = "echo-retriever"


@inparsx.hookimpl
def register_retrievers(register):
    register(Echo)
'''


def install_fake_dist(site: Path, dist: str, version: str, entry_points: dict[str, str]) -> None:
    """A minimal installed distribution (dist-info with METADATA and entry_points.txt) on a sys.path folder."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {module}\n" for name, module in entry_points.items())
    (info / "entry_points.txt").write_text(f"[inparsx]\n{lines}")


@pytest.fixture()
def site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "inparsx_echo.py").write_text(textwrap.dedent(THIRD_PARTY))
    install_fake_dist(site, "inparsx-echo", "0.3.1", {"echo": "inparsx_echo"})
    install_fake_dist(site, "inparsx-broken", "9.9", {"broken": "no_such_module_anywhere"})
    return site


def cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "inparsx.cli.main", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_third_party_plugin_listed_with_its_package_and_broken_one_reported(site):
    result = cli(site, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.stdout)}
    echo = rows[("retrievers", "echo-retriever")]
    assert (echo["package"], echo["version"]) == ("inparsx-echo", "0.3.1")
    assert echo["description"] == "Returns the query id as its only document."
    assert rows[("retrievers", "bm25")]["package"] == "inparsx"
    assert "warning: inparsx plugin 'broken' (inparsx-broken 9.9) failed to load" in result.stderr


def test_third_party_name_usable_in_recipes(site, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[recipe]\nname = "x"\n[dataset]\nname = "beir:scifact"\n[retrieve]\nuse = "echo-retriever"\n')
    result = cli(site, "validate", str(recipe))
    assert result.returncode == 0 and "retrieve=echo-retriever" in result.stdout


def test_duplicate_name_is_an_error():
    from inparsx.retrieve.base import Retriever

    class A(Retriever):
        name = "same"

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin_module("one", retrievers=[A]), name="one")
    pm.register(plugin_module("two", retrievers=[A]), name="two")
    with pytest.raises(PluginError, match="retrievers 'same' is registered twice"):
        Registry(pm)


def test_component_without_options_is_rejected():
    class NoOptions:
        name = "bare"

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin_module("bare", filters=[NoOptions]), name="bare")
    with pytest.raises(PluginError, match="needs a `name` and an `Options` model"):
        Registry(pm)


def test_a_class_of_another_kind_is_rejected_at_registration():
    from inparsx.filter.base import Filter

    class NotARetriever(Filter):
        name = "looks-like-one"

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin_module("wrong", retrievers=[NotARetriever]), name="wrong")
    with pytest.raises(PluginError, match="does not extend inparsx.retrieve.base.Retriever"):
        Registry(pm)


def test_unknown_name_message_suggests_nearest():
    message = unknown_name_message("rerankers", "cross-encodr", ["bi-encoder", "cross-encoder", "monot5"])
    assert message == (
        "unknown reranker 'cross-encodr'; available: bi-encoder, cross-encoder, monot5; did you mean 'cross-encoder'?"
    )
