"""Documents held out of training for the label-free estimate: moved to :mod:`inparsx.datasets.holdout` (a
dataset view the runner builds, so the runner imports no stage package); re-exported here for old imports."""

from inparsx.datasets.holdout import Holdout

__all__ = ["Holdout"]
