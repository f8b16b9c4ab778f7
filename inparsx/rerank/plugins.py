"""Built-in components of the rerank stage, registered through the `inparsx` entry points."""

import inparsx
