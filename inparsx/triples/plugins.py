"""Built-in components of the triples stage, registered through the `inparsx` entry points."""

import inparsx
from inparsx.triples.bm25_negatives import Bm25Negatives


@inparsx.hookimpl
def register_miners(register):
    register(Bm25Negatives)
