"""Built-in components of the train stage, registered through the `inparsx` entry points."""

import inparsx
