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
"""

import dataclasses
import math
import time
from typing import Optional, Tuple

import keras
import numpy as np

from . import data as flowers_data
from .accelerator import accelerator_scope, training_settings
from .errors import ConfigError
from .frozen import FrozenPart, activation_batches, predict_batch, whole_batches
from .plots import confusion_matrix


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
    images_per_second: float = 0.0
    frozen_until: str = ""

    @property
    def final_val_accuracy(self) -> float:
        return float(self.history["val_accuracy"][-1])

    @property
    def best_val_accuracy(self) -> float:
        return float(max(self.history["val_accuracy"]))


@dataclasses.dataclass(frozen=True)
class _Run:
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


def train(model: keras.Model, split: flowers_data.DataSplit, *, epochs: int = 10,
          batch_size: int = 64, accelerator=None, image_size=None, seed: Optional[int] = None,
          fast: bool = True, flip: bool = False, cosine_decay: bool = True, callbacks=None,
          verbose="auto", ignore_check: bool = False) -> TrainingResult:
    """Train `model` on `split` and validate after each epoch.

    Args:
        batch_size: per replica; the global batch is `accelerator.global_batch_size(batch_size)`.
        image_size: defaults to the model's input size.
        seed: makes shuffling and initialisation repeatable on one machine.
        fast: compute the model's frozen part once (`FrozenPart`) when it has one (not across
            several workers: `_train_multi_worker` trains on photos).
        flip: mirror the training photos left-right at random; on the fast path the frozen
            part's activations are mirrored instead, which is nearly the same and free.
        cosine_decay: lower the optimizer's learning rate along a cosine, epoch by
            epoch, from the compiled value towards zero (steadier final accuracy).
        ignore_check: train even a model that failed its exercise check (see
            `exercises.refuse_untrainable`).
    """
    _check_compiled(model)
    if not ignore_check:  # a model that failed its exercise check stops here, with the check's sentence
        from .exercises import refuse_untrainable
        refuse_untrainable(model)
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    callbacks = list(callbacks or [])
    if cosine_decay:
        callbacks.append(cosine_learning_rate(model.optimizer, epochs))
    run = _Run(split=split, image_size=flowers_data.image_size_pair(image_size or model.input_shape[1:3]),
               epochs=epochs, settings=training_settings(accelerator, batch_size),
               accelerator=accelerator, seed=seed, flip=flip, callbacks=tuple(callbacks),
               verbose=verbose)
    multi_worker = _is_multi_worker(accelerator)
    frozen = FrozenPart.of(model, accelerator) if fast and not multi_worker else None
    start = time.perf_counter()
    feature_time = 0.0
    with flowers_data.reading(split.validation_shards + split.training_shards, run.image_size):
        if multi_worker:
            history = _train_multi_worker(model, run)
        elif frozen:
            history, feature_time = _fit_on_activations(frozen, run, model)
        else:
            history = _fit_on_images(model, run)
    wall = time.perf_counter() - start
    images_seen = epochs * (split.training_images + split.validation_images)
    return TrainingResult(history=history, wall_time_s=wall, fast_path=frozen is not None,
                          feature_time_s=feature_time,
                          images_per_second=images_seen / wall if wall else 0.0,
                          frozen_until=frozen.cut if frozen else "")


def fine_tune(model: keras.Model, split: flowers_data.DataSplit, *, from_block: int = 13,
              epochs: int = 8, learning_rate: float = 1e-4, batch_size: int = 32,
              accelerator=None, flip: bool = True, **train_arguments) -> TrainingResult:
    """Let MobileNetV2's top blocks learn too, at a low learning rate, and train.

    Blocks `from_block`..16 and the last 1x1 convolution become trainable (their
    BatchNormalization layers stay frozen, see `model.unfreeze_top`); the model is
    compiled again with Adam at `learning_rate` along a cosine. Blocks 0 to
    `from_block - 1` stay frozen, so `train()` computes them once per photo and
    trains only the top of the network and the head on their activations: minutes
    on a CPU instead of an hour. Train the head first (`train()`), or its random
    start disturbs the pretrained blocks. Other arguments go to `train()`.
    """
    from .model import compile_model, unfreeze_top

    unfreeze_top(model, from_block)
    with accelerator_scope(accelerator):
        compile_model(model, learning_rate=learning_rate, accelerator=accelerator)
    return train(model, split, epochs=epochs, batch_size=batch_size, accelerator=accelerator,
                 flip=flip, **train_arguments)


def _fit_on_images(model: keras.Model, run: _Run) -> dict:
    """Plain `model.fit` on the photos: every layer runs in every epoch."""
    split, global_batch = run.split, run.settings.global_batch_size
    training = flowers_data.get_training_dataset(
        split.training_shards, run.image_size, global_batch, run.seed,
        drop_remainder=run.settings.drop_remainder, exclude_shards=split.validation_shards,
        flip=run.flip)
    usable = split.validation_images - split.validation_images % run.settings.batch_multiple
    validation = flowers_data.get_validation_dataset(  # every batch must split evenly over the devices
        split.validation_shards, run.image_size, global_batch, limit=usable)
    history = model.fit(training, steps_per_epoch=split.steps_per_epoch(global_batch), epochs=run.epochs,
                        validation_data=validation, callbacks=list(run.callbacks), verbose=run.verbose,
                        shuffle=False)  # get_training_dataset shuffles
    return history.history


# --- The frozen part of a model ---------------------------------------------------------------

def _fit_on_activations(frozen: FrozenPart, run: _Run, model: keras.Model) -> Tuple[dict, float]:
    """Train `frozen.upper` on the cached activations; Keras history and seconds spent on `lower`.

    `upper` is compiled as `model` was, with `model`'s own optimizer: its state is the
    model's, so a saved model holds it (and loads without Keras' optimizer warning).
    """
    start = time.perf_counter()
    train_x, train_y, val_x, val_y = frozen.activations(run.split, run.image_size)
    seconds = time.perf_counter() - start
    settings = run.settings
    global_batch = settings.global_batch_size
    train_x, train_y = whole_batches(train_x, train_y, global_batch if settings.drop_remainder
                                     else settings.batch_multiple)
    val_x, val_y = whole_batches(val_x, val_y, settings.batch_multiple)
    compile_arguments = keras.saving.deserialize_keras_object(model.get_compile_config())
    with accelerator_scope(run.accelerator):
        frozen.upper.compile(**{**compile_arguments, "optimizer": model.optimizer,
                                "steps_per_execution": settings.steps_per_execution})
    history = frozen.upper.fit(
        activation_batches(train_x, train_y, global_batch, shuffle=True, flip=run.flip),
        validation_data=activation_batches(val_x, val_y, global_batch), epochs=run.epochs,
        callbacks=list(run.callbacks), verbose=run.verbose,
        shuffle=False)  # the batches above are shuffled already
    return history.history, seconds


# --- Helpers shared by every way of training ----------------------------------------------------

def cosine_learning_rate(optimizer, epochs: int) -> keras.callbacks.Callback:
    """Per-epoch cosine decay from the optimizer's learning rate (epoch 0) towards 0."""
    initial = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    return keras.callbacks.LearningRateScheduler(
        lambda epoch: initial * 0.5 * (1 + math.cos(math.pi * epoch / epochs)))


def _check_compiled(model: keras.Model) -> None:
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ConfigError("the model is not compiled: call model.compile(optimizer='adam', "
                          "loss='sparse_categorical_crossentropy', metrics=['accuracy']) first.")


def _is_multi_worker(accelerator) -> bool:
    """True when training spans several machines: a MultiWorkerMirroredStrategy from TF_CONFIG."""
    if accelerator is None or accelerator.backend != "tensorflow" or accelerator.strategy is None:
        return False
    import tensorflow as tf

    return isinstance(accelerator.strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _train_multi_worker(model: keras.Model, run: "_Run") -> dict:
    """Train on images over all workers with a small custom loop; return the Keras-style history.

    Keras 3's `model.fit` fails under MultiWorkerMirroredStrategy (it reduces a tuple of
    per-replica batches while building the model: keras-team/keras#20585,
    tensorflow/tensorflow#72388), so this loop does fit's work. Each worker reads its own
    training shards (shard i, i + workers, ...) and its own validation batches. Every
    replica's loss is averaged over the global batch (`tf.nn.compute_average_loss`) and
    the optimizer sums the gradients of all replicas, so every worker applies the same
    update. Loss and accuracy are summed over all workers. Callbacks (the cosine learning
    rate, loggers, early stopping) are called as fit calls them.
    """
    import tensorflow as tf

    split, image_size, epochs = run.split, run.image_size, run.epochs
    strategy = run.accelerator.strategy
    global_batch = run.settings.global_batch_size
    loss_of_each = keras.losses.get(model.loss)  # per-example loss, e.g. cross-entropy

    def training_batches(context):
        workers, worker = context.num_input_pipelines, context.input_pipeline_id
        if len(split.training_shards) < workers:
            raise ConfigError(f"{workers} workers need at least {workers} training shards (each "
                              f"worker reads its own), got {len(split.training_shards)}: use more "
                              "shards or fewer validation shards.")
        return flowers_data.get_training_dataset(
            split.training_shards[worker::workers], image_size,
            context.get_per_replica_batch_size(global_batch), run.seed, drop_remainder=True,
            exclude_shards=split.validation_shards, flip=run.flip)

    def validation_batches(context):
        batches = flowers_data.get_validation_dataset(
            split.validation_shards, image_size, context.get_per_replica_batch_size(global_batch))
        return batches.shard(context.num_input_pipelines, context.input_pipeline_id)

    def totals(labels, probabilities, losses):
        """[summed loss, correct predictions, examples] of one replica's batch."""
        predicted = tf.argmax(probabilities, axis=-1, output_type=labels.dtype)
        correct = tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32))
        return tf.stack([tf.reduce_sum(losses), correct, tf.cast(tf.size(labels), tf.float32)])

    def train_replica(images, labels):
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)
            losses = loss_of_each(labels, probabilities)
            loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
            if model.losses:  # weight regularizers, if any
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return totals(labels, probabilities, losses)

    def validate_replica(images, labels):
        probabilities = model(images, training=False)
        return totals(labels, probabilities, loss_of_each(labels, probabilities))

    @tf.function
    def train_step(iterator):
        return strategy.reduce("SUM", strategy.run(train_replica, args=next(iterator)), axis=None)

    @tf.function
    def validate_step(batch):
        return strategy.reduce("SUM", strategy.run(validate_replica, args=batch), axis=None)

    def means(sums, prefix=""):
        return {f"{prefix}loss": float(sums[0] / sums[2]), f"{prefix}accuracy": float(sums[1] / sums[2])}

    training = iter(strategy.distribute_datasets_from_function(training_batches))
    validation = strategy.distribute_datasets_from_function(validation_batches)
    if not model.optimizer.built:  # its variables are made here, not inside the step
        with accelerator_scope(run.accelerator):
            model.optimizer.build(model.trainable_variables)
    steps = split.steps_per_epoch(global_batch)
    verbose = 1 if run.verbose == "auto" else run.verbose
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*run.callbacks, history], add_progbar=verbose != 0, model=model,
        verbose=verbose, epochs=epochs, steps=steps)
    model.stop_training, logs = False, {}
    callback_list.on_train_begin()
    first_epoch = getattr(model, "_initial_epoch", None) or 0  # set by BackupAndRestore, as in fit
    for epoch in range(first_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        sums = np.zeros(3)
        for step in range(steps):
            callback_list.on_train_batch_begin(step)
            sums += train_step(training).numpy()
            callback_list.on_train_batch_end(step, means(sums))
        logs = means(sums)
        logs.update(means(sum(validate_step(batch).numpy() for batch in validation), "val_"))
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return history.history



def evaluate(model: keras.Model, shards, image_size=None, batch_size: int = 64,
             classes=flowers_data.CLASSES, flip_test: bool = False, progress=None) -> dict:
    """Accuracy, per-class accuracy and confusion matrix of `model` on every image of `shards`.

    `flip_test` averages the probabilities of each photo and of its mirror image
    (test-time augmentation: two model passes, usually a little more accurate).
    `progress`, if given, is called with the number of images done after each batch.
    """
    image_size = image_size or tuple(model.input_shape[1:3])
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
