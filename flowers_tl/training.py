"""Training that computes the frozen part of a model only once.

A frozen layer gives the same output for a photo in every epoch, so the original
course spent most of its training time recomputing it. `train()` finds the frozen
start of the model (`frozen.FrozenPart`): the rescaling and the frozen MobileNetV2
when only the head learns, or MobileNetV2 up to its last frozen block when its top
blocks are fine-tuned (`fine_tune()`). It runs that part once over every photo,
keeps the activations in memory as float16, and trains the rest on them. The rest
is made of the model's own layers, so the full model is trained when `train()`
returns. `fast=False` runs the plain `model.fit` on photos instead; both give the
same results within noise.

`train` only chooses the path; each lives in its own module with one entry point
taking `(model, TrainingRun)`: `fitting.fit_on_images`, `frozen.FrozenPart.fit` and
the accelerator's `fit_across_machines` (a cluster job of the command line: `tool.multiworker`).
"""

import contextlib
import dataclasses
import math
import time
from typing import Optional

import keras
import numpy as np

from . import data as flowers_data, rules
from .accelerator import accelerator_scope, is_multi_worker, training_settings
from .errors import ConfigError, WrongTypeError
from .fitting import TrainingRun, fit_on_images
from .frozen import FrozenPart, predict_batch
from .messages import N_, say
from .model import class_names_of
from .scores import accuracy_name, confusion_matrix

NOT_COMPILED = N_("the model is not compiled: call model.compile(optimizer='adam', "
                  "loss='sparse_categorical_crossentropy', metrics=['accuracy']) first.")

NOT_A_SPLIT = N_("split must be a DataSplit, the photos to train and validate on, got a {type}: write "
                 "split = ftl.split_shards(pattern) and pass split.")


@dataclasses.dataclass
class TrainingResult:
    """What `train()` did: Keras history (per-epoch lists), timings and the path used.

    `frozen_until` names the layer the precomputed frozen part ends with ("" when
    the model trained on photos); `feature_time_s` is the time of that one pass.
    """

    history: dict
    wall_time_s: float
    fast_path: bool
    feature_time_s: float = 0.0
    frozen_until: str = ""

    @property
    def final_val_accuracy(self) -> float:
        """The validation accuracy after the last epoch (whatever the metric was named when compiled)."""
        return float(self.history[accuracy_name(self.history, validation=True)][-1])

    @property
    def best_val_accuracy(self) -> float:
        return float(max(self.history[accuracy_name(self.history, validation=True)]))


def train(model: keras.Model, split: flowers_data.DataSplit, *, epochs: int = 10,
          batch_size: int = 64, accelerator=None, image_size=None, seed: Optional[int] = None,
          fast: bool = True, flip: bool = False, cosine_decay: bool = False, callbacks=None,
          verbose="auto") -> TrainingResult:
    """Train `model` on `split` and validate after each epoch.

    Args:
        batch_size: per replica; the global batch is `accelerator.global_batch_size(batch_size)`.
        image_size: defaults to the model's input size.
        seed: makes shuffling and initialisation repeatable on one machine.
        fast: compute the model's frozen part once (`FrozenPart`) when it has one (not across
            several workers: `tool.multiworker.fit_across_workers` trains on photos).
        flip: mirror the training photos left-right at random; on the fast path the frozen
            part's activations are mirrored instead, which is nearly the same and free.
        cosine_decay: lower the optimizer's learning rate along a cosine, epoch by
            epoch, from the compiled value towards zero (steadier final accuracy); the
            compiled rate is put back at the end, so a second `train` starts from it again.
            Off unless asked for: by default `train` changes no setting of the model.

    A model that carries its class names (`build_model(class_names=...)`, a learner's own classes,
    however many) has every record checked against them, as the course's model has against CLASSES.
    """
    _check_compiled(model)
    run = _training_run(model, split, epochs=epochs, batch_size=batch_size, accelerator=accelerator,
                        image_size=image_size, seed=seed, flip=flip, cosine_decay=cosine_decay,
                        callbacks=callbacks, verbose=verbose)
    frozen = FrozenPart.of(model, accelerator) if fast and not is_multi_worker(accelerator) else None
    start = time.perf_counter()
    with flowers_data.reading(split.validation_shards + split.training_shards, run.image_size), \
            flowers_data.checking_classes(class_names_of(model)), _learning_rate_kept(model.optimizer):
        if is_multi_worker(accelerator):  # Keras' fit fails across machines: the cluster's own loop
            history = accelerator.fit_across_machines(model, run)
        elif frozen:
            history = frozen.fit(model, run)
        else:
            history = fit_on_images(model, run)
    return TrainingResult(history=history, wall_time_s=time.perf_counter() - start,
                          fast_path=frozen is not None, feature_time_s=frozen.feature_time_s if frozen else 0.0,
                          frozen_until=frozen.cut if frozen else "")


def _training_run(model: keras.Model, split: flowers_data.DataSplit, *, epochs: int, batch_size: int,
                  accelerator, image_size, seed: Optional[int], flip: bool, cosine_decay: bool, callbacks,
                  verbose) -> TrainingRun:
    """Check `train()`'s settings, seed the random generators and gather the settings in one object."""
    if not isinstance(split, flowers_data.DataSplit):
        raise WrongTypeError(say(NOT_A_SPLIT, type=type(split).__name__))
    epochs, batch_size, seed = (rules.at_least(epochs, "epochs"), rules.at_least(batch_size, "batch_size"),
                                rules.seed(seed))
    if seed is not None:
        keras.utils.set_random_seed(seed)
    callbacks = list(callbacks or [])
    if cosine_decay:
        callbacks.append(cosine_learning_rate(model.optimizer, epochs))
    return TrainingRun(split=split, image_size=flowers_data.image_size_pair(image_size or model.input_shape[1:3]),
                       epochs=epochs, settings=training_settings(accelerator, batch_size),
                       accelerator=accelerator, seed=seed, flip=flip, callbacks=tuple(callbacks),
                       verbose=verbose)


def fine_tune(model: keras.Model, split: flowers_data.DataSplit, *, from_block: int = 13,
              epochs: int = 8, learning_rate: float = 1e-4, batch_size: int = 32,
              accelerator=None, flip: bool = True, **train_arguments) -> TrainingResult:
    """Let MobileNetV2's top blocks learn too, at a low learning rate, and train.

    Blocks `from_block`..16 and the last 1x1 convolution become trainable (their
    BatchNormalization layers stay frozen, see `model.unfreeze_top`); the model is
    compiled again with Adam at `learning_rate` along a cosine (`cosine_decay=True`). Blocks 0 to
    `from_block - 1` stay frozen, so `train()` computes them once per photo and
    trains only the top of the network and the head on their activations: minutes
    on a CPU instead of an hour. Train the head first (`train()`), or its random
    start disturbs the pretrained blocks. Other arguments go to `train()`.
    """
    from .model import compile_model, unfreeze_top

    learning_rate = rules.above_zero(learning_rate, "learning_rate")
    unfreeze_top(model, rules.block(from_block))
    with accelerator_scope(accelerator):
        compile_model(model, learning_rate=learning_rate, accelerator=accelerator)
    train_arguments.setdefault("cosine_decay", True)
    return train(model, split, epochs=epochs, batch_size=batch_size, accelerator=accelerator,
                 flip=flip, **train_arguments)


# --- Helpers shared by every way of training ----------------------------------------------------

def cosine_learning_rate(optimizer, epochs: int) -> keras.callbacks.Callback:
    """Per-epoch cosine decay from the optimizer's learning rate (epoch 0) towards 0."""
    initial = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    return keras.callbacks.LearningRateScheduler(
        lambda epoch: initial * 0.5 * (1 + math.cos(math.pi * epoch / epochs)))


@contextlib.contextmanager
def _learning_rate_kept(optimizer):
    """Put the optimizer's learning rate back after the block (a schedule callback lowers it)."""
    schedule = isinstance(optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule)
    rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    try:
        yield
    finally:
        if not schedule:  # a LearningRateSchedule sets the rate itself, step by step
            optimizer.learning_rate = rate


def _check_compiled(model: keras.Model) -> None:
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ConfigError(say(NOT_COMPILED))


def evaluate(model: keras.Model, shards, image_size=None, batch_size: int = 64,
             classes=flowers_data.CLASSES, flip_test: bool = False, progress=None) -> dict:
    """Accuracy, per-class accuracy and confusion matrix of `model` on every image of `shards`.

    `flip_test` averages the probabilities of each photo and of its mirror image
    (test-time augmentation: two model passes, usually a little more accurate).
    `progress`, if given, is called with the number of images done after each batch.
    """
    image_size = image_size or tuple(model.input_shape[1:3])
    with flowers_data.checking_classes(classes):  # a learner's own classes, however many
        dataset = flowers_data.load_dataset(shards, image_size, ordered=True).batch(batch_size)
    labels, predicted = [], []
    with flowers_data.reading(shards, image_size):
        for images, batch_labels in dataset.as_numpy_iterator():
            probabilities = predict_batch(model, images, batch_size)
            if flip_test:
                probabilities = probabilities + predict_batch(model, images[:, :, ::-1], batch_size)
            predicted.append(probabilities.argmax(axis=-1))
            labels.append(batch_labels)
            if progress:
                progress(sum(len(batch) for batch in labels))
    labels, predicted = np.concatenate(labels), np.concatenate(predicted)
    matrix = confusion_matrix(labels, predicted, len(classes))
    per_class = {name: (float(matrix[i, i] / matrix[i].sum()) if matrix[i].sum() else None)
                 for i, name in enumerate(classes)}
    return {"images": int(len(labels)), "accuracy": float((labels == predicted).mean()),
            "per_class_accuracy": per_class, "confusion_matrix": matrix.tolist(),
            "classes": list(classes)}
