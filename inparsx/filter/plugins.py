"""Built-in components of the filter stage, registered through the `inparsx` entry points."""

import inparsx
