"""Built-in tuners, registered through the ``inparsx`` entry points like any plugin."""

import inparsx


@inparsx.hookimpl
def register_tuners(register):
    from inparsx.tune.cpo import CPOTuner

    for cls in (CPOTuner,):
        register(cls)
