"""Built-in components of the triples stage, registered through the `inparsx` entry points."""

import inparsx
