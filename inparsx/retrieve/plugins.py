"""Built-in components of the retrieve stage, registered through the `inparsx` entry points."""

import inparsx
