"""Built-in tuners, registered through the ``inparsx`` entry points like any plugin."""

import inparsx


@inparsx.hookimpl
def register_tuners(register):
    from inparsx.tune.cpo import CPOTuner
    from inparsx.tune.dspy_tuner import DSPyTuner
    from inparsx.tune.path import PathTuner

    for cls in (CPOTuner, DSPyTuner, PathTuner):
        register(cls)
