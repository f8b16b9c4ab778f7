"""The pre-flight check: before the first stage (``inparsx run``) or on its own (``inparsx validate --check``),
every model a recipe names is resolved (a local folder, an installed package, the hub cache, or the hub; gated
repositories need a token with access), its memory is set against this machine's GPUs or RAM, and when there
is no GPU, the time generation would take on this CPU is estimated. No model weights are loaded.

- :mod:`inparsx.preflight.resolve`: where a model comes from (huggingface_hub), and offline mode.
- :mod:`inparsx.preflight.sizes`: parameter counts and architecture numbers, from file headers or the hub.
- :mod:`inparsx.preflight.memory`: bytes per use (weights, KV cache, training state) against the machine.
- :mod:`inparsx.preflight.cpu`: this CPU's measured matrix-product rate.
- :mod:`inparsx.preflight.check`: the check of a recipe, and of one stage before its folder is cleared.
"""

from inparsx.preflight.check import PreflightError, PreflightReport, check_recipe, check_stage_models, recipe_models

__all__ = ["PreflightError", "PreflightReport", "check_recipe", "check_stage_models", "recipe_models"]
