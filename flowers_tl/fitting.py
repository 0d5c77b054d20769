"""What one training run is asked to do (`TrainingRun`), and the plain way to do it: `model.fit` on photos.

`training.train` builds one `TrainingRun` and hands it to one of three paths, each with
one entry point taking `(model, run)` and returning Keras' per-epoch history:
`fit_on_images` here (every layer runs in every epoch), `frozen.FrozenPart.fit`
(the frozen start computed once) and `tool.multiworker.fit_across_workers` (several machines).
"""

import dataclasses
from typing import Optional, Tuple

from . import data as flowers_data


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """The settings of one training run, shared by every way of training."""

    split: flowers_data.DataSplit
    image_size: Tuple[int, int]
    epochs: int
    settings: object  # accelerator.TrainingSettings
    accelerator: object
    seed: Optional[int]
    flip: bool
    callbacks: tuple
    verbose: object

    @property
    def progress(self) -> int:
        """Keras' verbosity as a number: "auto" shows a progress bar (1), as `model.fit` does."""
        return 1 if self.verbose == "auto" else int(self.verbose)


def fit_on_images(model, run: TrainingRun) -> dict:
    """Plain `model.fit` on the photos: every layer runs in every epoch."""
    split, global_batch = run.split, run.settings.global_batch_size
    training = flowers_data.get_training_dataset(
        split.training_shards, run.image_size, global_batch, run.seed,
        drop_remainder=run.settings.drop_remainder, exclude_shards=split.validation_shards,
        flip=run.flip, images=split.training_images)
    usable = split.validation_images - split.validation_images % run.settings.batch_multiple
    validation = flowers_data.get_validation_dataset(  # every batch must split evenly over the devices
        split.validation_shards, run.image_size, global_batch, limit=usable)
    history = model.fit(training, steps_per_epoch=split.steps_per_epoch(global_batch), epochs=run.epochs,
                        validation_data=validation, callbacks=list(run.callbacks), verbose=run.verbose,
                        shuffle=False)  # get_training_dataset shuffles
    return history.history
