"""Built-in components of the evaluate stage, registered through the `inparsx` entry points."""

import inparsx
