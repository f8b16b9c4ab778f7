"""Built-in components of the train stage, registered through the `inparsx` entry points.

Nothing heavy is imported here: each trainer imports torch/transformers inside its methods.
"""

from __future__ import annotations

import inparsx
from inparsx.train.bi_encoder import BiEncoderTrainer
from inparsx.train.cross_encoder import CrossEncoderTrainer
from inparsx.train.monot5 import MonoT5Trainer


@inparsx.hookimpl
def register_trainers(register):
    register(CrossEncoderTrainer)
    register(BiEncoderTrainer)
    register(MonoT5Trainer)


@inparsx.hookimpl
def register_commands(app):
    from inparsx.train.cli import add_train_command

    add_train_command(app)
