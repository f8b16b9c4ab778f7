"""Built-in components of the generate stage, registered through the `inparsx` entry points."""

import inparsx
