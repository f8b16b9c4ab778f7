"""Built-in components of the retrieve stage, registered through the `inparsx` entry points."""

import inparsx
from inparsx.retrieve.bm25s_retriever import Bm25s
from inparsx.retrieve.lucene import LuceneBM25


@inparsx.hookimpl
def register_retrievers(register):
    register(LuceneBM25)
    register(Bm25s)


@inparsx.hookimpl
def register_commands(app):
    from inparsx.retrieve.cli import retrieve

    app.command("retrieve")(retrieve)
