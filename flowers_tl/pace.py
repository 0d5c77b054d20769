"""How much the notebooks train: the full course, or the quick mode the automated tests run.

`course_pace()` reads FLOWERS_TL_FAST: unset, the full course; `1`, one short epoch on a
few shards (how tests/test_notebooks.py runs the notebooks in minutes).
"""

import dataclasses
import os
from typing import Optional

from .data import DataSplit, count_images
from .messages import N_, N_plural, say, say_n

FAST_ENV_VARIABLE = "FLOWERS_TL_FAST"

PACE = N_plural("Pace: {mode}, {epochs} epoch of training", "Pace: {mode}, {epochs} epochs of training")
QUICK_MODE = N_("quick mode ({variable}=1)")
FULL_COURSE = N_("full course")


@dataclasses.dataclass(frozen=True)
class CoursePace:
    """How much the notebook trains: the full course, or the quick mode of the automated tests."""

    fast: bool
    epochs: int
    baseline_epochs: int
    fine_tune_epochs: int
    training_shards: Optional[int] = None  # None: all of them
    validation_shards: Optional[int] = None

    def data(self, split: DataSplit) -> DataSplit:
        """`split` itself, or in quick mode its first few shards."""
        if not self.fast:
            return split
        training = split.training_shards[: self.training_shards]
        validation = split.validation_shards[: self.validation_shards]
        return DataSplit(training, validation, count_images(training), count_images(validation))

    def __str__(self) -> str:
        mode = say(QUICK_MODE, variable=FAST_ENV_VARIABLE) if self.fast else say(FULL_COURSE)
        return say_n(*PACE, self.epochs, mode=mode, epochs=self.epochs)


FULL_PACE = CoursePace(fast=False, epochs=10, baseline_epochs=3, fine_tune_epochs=5)
QUICK_PACE = CoursePace(fast=True, epochs=1, baseline_epochs=1, fine_tune_epochs=1,
                        training_shards=1, validation_shards=1)


def course_pace() -> CoursePace:
    """The full course, or the quick mode when FLOWERS_TL_FAST=1 (how the tests run the notebooks)."""
    return QUICK_PACE if os.environ.get(FAST_ENV_VARIABLE, "") in ("1", "true", "yes") else FULL_PACE
