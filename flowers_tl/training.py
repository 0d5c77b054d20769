"""Training, with a fast path for frozen backbones.

A frozen backbone computes the same features for a photo in every epoch, so the
original course spent most of its training time recomputing them. When the model
starts with frozen, deterministic layers (preprocessing + frozen MobileNetV2),
`train()` runs those layers once over every image, keeps the features in memory
as float16, and trains only the head on them. The head's layers are the model's
own layers, so the full model is trained when this returns. `fast=False` runs
the plain `model.fit` on images instead; both give the same results within noise.
"""

import dataclasses
import hashlib
import math
import time
from typing import List, Optional, Tuple

import keras
import numpy as np

from . import data as flowers_data
from .accelerator import accelerator_scope, training_settings
from .errors import ConfigError, DataError
from .plots import confusion_matrix

# Layers that are deterministic at training time and own no trainable weights
# when frozen; a model's frozen prefix may only contain these (or frozen models).
_STATELESS_LAYERS = (keras.layers.Rescaling, keras.layers.Resizing, keras.layers.InputLayer)


@dataclasses.dataclass
class TrainingResult:
    """What `train()` did: Keras history (per-epoch lists), timings and the path used."""

    history: dict
    wall_time_s: float
    fast_path: bool
    feature_time_s: float = 0.0
    images_per_second: float = 0.0

    @property
    def final_val_accuracy(self) -> float:
        return float(self.history["val_accuracy"][-1])

    @property
    def best_val_accuracy(self) -> float:
        return float(max(self.history["val_accuracy"]))


def frozen_prefix_length(model: keras.Model) -> int:
    """How many leading layers of a Sequential model can be precomputed once (0 = none).

    The prefix must end with a frozen layer that has weights (the backbone) and
    contain only frozen or stateless layers, so its output never changes in training.
    """
    if not isinstance(model, keras.Sequential):
        return 0
    length = 0
    for index, layer in enumerate(model.layers):
        frozen_with_weights = bool(layer.weights) and not layer.trainable_weights
        if frozen_with_weights:
            length = index + 1
        elif not isinstance(layer, _STATELESS_LAYERS):
            break
    return length if length < len(model.layers) else 0


def extract_features(extractor: keras.Model, dataset, batch_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Run `extractor` once over an unbatched (image, label) dataset; float16 features, int labels."""
    features: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    for images, batch_labels in dataset.batch(batch_size).as_numpy_iterator():
        features.append(np.asarray(extractor.predict_on_batch(images), dtype=np.float16))
        labels.append(batch_labels)
    if not features:
        raise DataError("no image to compute features for: the shards are empty, or every training "
                        "photo is also a validation photo. Add photos or choose other shards.")
    return np.concatenate(features), np.concatenate(labels)


def cosine_learning_rate(optimizer, epochs: int) -> keras.callbacks.Callback:
    """Per-epoch cosine decay from the optimizer's learning rate (epoch 0) towards 0."""
    initial = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    return keras.callbacks.LearningRateScheduler(
        lambda epoch: initial * 0.5 * (1 + math.cos(math.pi * epoch / epochs)))


def _check_compiled(model: keras.Model) -> None:
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ConfigError("the model is not compiled: call model.compile(optimizer='adam', "
                          "loss='sparse_categorical_crossentropy', metrics=['accuracy']) first.")


def train(model: keras.Model, split: flowers_data.DataSplit, *, epochs: int = 10,
          batch_size: int = 64, accelerator=None, image_size=None, seed: Optional[int] = None,
          fast: bool = True, cosine_decay: bool = True, callbacks=None,
          verbose="auto") -> TrainingResult:
    """Train `model` on `split` and validate after each epoch.

    Args:
        batch_size: per replica; the global batch is `accelerator.global_batch_size(batch_size)`.
        image_size: defaults to the model's input size.
        seed: makes shuffling and initialisation repeatable on one machine.
        fast: precompute the frozen backbone's features once when possible (not across
            several workers: `_train_multi_worker` trains on images).
        cosine_decay: lower the optimizer's learning rate along a cosine, epoch by
            epoch, from the compiled value towards zero (steadier final accuracy).
    """
    _check_compiled(model)
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    image_size = image_size or tuple(model.input_shape[1:3])
    settings = training_settings(accelerator, batch_size)
    multi_worker = _is_multi_worker(accelerator)
    prefix = frozen_prefix_length(model) if fast and not multi_worker else 0
    if cosine_decay:
        callbacks = [*(callbacks or []), cosine_learning_rate(model.optimizer, epochs)]
    start = time.perf_counter()
    all_shards = split.validation_shards + split.training_shards
    with flowers_data.reading(all_shards, image_size):  # a bad shard stops training, by name
        if multi_worker:
            history, feature_time = _train_multi_worker(
                model, split, image_size, epochs, settings, accelerator, seed, callbacks, verbose), 0.0
        elif prefix:
            history, feature_time = _train_head_on_features(
                model, prefix, split, image_size, epochs, settings, accelerator, callbacks, verbose)
        else:
            history, feature_time = _train_on_images(
                model, split, image_size, epochs, settings, seed, callbacks, verbose), 0.0
    wall = time.perf_counter() - start
    images_seen = epochs * split.training_images + split.validation_images * epochs
    return TrainingResult(history=history, wall_time_s=wall, fast_path=bool(prefix),
                          feature_time_s=feature_time,
                          images_per_second=images_seen / wall if wall else 0.0)


def _train_on_images(model, split, image_size, epochs, settings, seed, callbacks, verbose):
    global_batch = settings.global_batch_size
    training = flowers_data.get_training_dataset(split.training_shards, image_size, global_batch, seed,
                                                 drop_remainder=settings.drop_remainder,
                                                 exclude_shards=split.validation_shards)
    validation = flowers_data.get_validation_dataset(split.validation_shards, image_size, global_batch)
    if settings.batch_multiple > 1:  # every batch must split evenly over the devices
        usable = split.validation_images - split.validation_images % settings.batch_multiple
        validation = validation.unbatch().take(usable).batch(global_batch)
    history = model.fit(training, steps_per_epoch=split.steps_per_epoch(global_batch), epochs=epochs,
                        validation_data=validation, callbacks=callbacks, verbose=verbose)
    return history.history


def _is_multi_worker(accelerator) -> bool:
    """True when training spans several machines: a MultiWorkerMirroredStrategy from TF_CONFIG."""
    if accelerator is None or accelerator.backend != "tensorflow" or accelerator.strategy is None:
        return False
    import tensorflow as tf

    return isinstance(accelerator.strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _train_multi_worker(model, split, image_size, epochs, settings, accelerator, seed,
                        callbacks, verbose):
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

    strategy = accelerator.strategy
    global_batch = settings.global_batch_size
    loss_of_each = keras.losses.get(model.loss)  # per-example loss, e.g. cross-entropy

    def training_batches(context):
        workers, worker = context.num_input_pipelines, context.input_pipeline_id
        if len(split.training_shards) < workers:
            raise ConfigError(f"{workers} workers need at least {workers} training shards (each "
                              f"worker reads its own), got {len(split.training_shards)}: use more "
                              "shards or fewer validation shards.")
        return flowers_data.get_training_dataset(
            split.training_shards[worker::workers], image_size,
            context.get_per_replica_batch_size(global_batch), seed, drop_remainder=True,
            exclude_shards=split.validation_shards)

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
        with accelerator_scope(accelerator):
            model.optimizer.build(model.trainable_variables)
    steps = split.steps_per_epoch(global_batch)
    verbose = 1 if verbose == "auto" else verbose
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*(callbacks or []), history], add_progbar=verbose != 0, model=model,
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


def _train_head_on_features(model, prefix, split, image_size, epochs, settings,
                            accelerator, callbacks, verbose):
    global_batch = settings.global_batch_size
    with accelerator_scope(accelerator):
        extractor = keras.Sequential([keras.Input(model.input_shape[1:]), *model.layers[:prefix]])
    start = time.perf_counter()
    train_x, train_y, val_x, val_y = cached_features(extractor, split, image_size)
    feature_time = time.perf_counter() - start
    train_x, train_y = _whole_batches(train_x, train_y, global_batch if settings.drop_remainder
                                      else settings.batch_multiple)
    val_x, val_y = _whole_batches(val_x, val_y, settings.batch_multiple)
    with accelerator_scope(accelerator):
        head = keras.Sequential([keras.Input(train_x.shape[1:]), *model.layers[prefix:]])
        head.compile_from_config({**model.get_compile_config(),
                                  "steps_per_execution": settings.steps_per_execution})
    history = head.fit(feature_batches(train_x, train_y, global_batch, shuffle=True), epochs=epochs,
                       validation_data=feature_batches(val_x, val_y, global_batch),
                       callbacks=callbacks, verbose=verbose)
    return history.history, feature_time


# One set of features at a time (a few hundred MB): the last frozen prefix, shards and size.
_FEATURE_CACHE: dict = {}
FEATURE_BATCH_SIZE = 32  # small batches keep the backbone's activations, and peak memory, low


def cached_features(extractor: keras.Model, split: flowers_data.DataSplit, image_size):
    """Training and validation features of `extractor`, computed once and reused.

    Notebook cells that train several heads on the same frozen backbone (Flatten,
    GlobalAveragePooling, an extra Dense layer) then skip the backbone entirely.
    """
    key = (_weights_fingerprint(extractor), split.training_shards, split.validation_shards,
           flowers_data.image_size_pair(image_size))
    if key not in _FEATURE_CACHE:
        _FEATURE_CACHE.clear()
        train_x, train_y = extract_features(
            extractor, flowers_data.load_dataset(split.training_shards, image_size, ordered=True,
                                                 exclude_shards=split.validation_shards),
            FEATURE_BATCH_SIZE)
        val_x, val_y = extract_features(
            extractor, flowers_data.load_dataset(split.validation_shards, image_size, ordered=True),
            FEATURE_BATCH_SIZE)
        _FEATURE_CACHE[key] = (train_x, train_y, val_x, val_y)
    return _FEATURE_CACHE[key]


def _weights_fingerprint(extractor: keras.Model) -> str:
    """A hash of the layers' kinds, settings and weights: equal only for the same frozen prefix."""
    digest = hashlib.sha256()
    for layer in extractor.layers:
        digest.update(f"{type(layer).__name__}{layer.get_config() if not layer.weights else ''}".encode())
        for weight in layer.weights:
            digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


def feature_batches(features: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool = False):
    """Batches of float32 features from a float16 array, without a float32 copy of the whole array."""
    import tensorflow as tf

    table = tf.constant(features)
    classes = tf.constant(labels)
    indices = tf.data.Dataset.range(len(labels))
    if shuffle:
        indices = indices.shuffle(len(labels), reshuffle_each_iteration=True)
    return indices.batch(batch_size).map(
        lambda index: (tf.cast(tf.gather(table, index), tf.float32), tf.gather(classes, index)),
        num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _whole_batches(features: np.ndarray, labels: np.ndarray, multiple: int):
    """Keep the largest count of examples that is a multiple of `multiple`.

    Drops at most `multiple - 1` examples: TPUs need full batches, and JAX's
    DataParallel splits every batch evenly over its devices.
    """
    usable = len(labels) - len(labels) % multiple
    return features[:usable], labels[:usable]


def evaluate(model: keras.Model, shards, image_size=None, batch_size: int = 64,
             classes=flowers_data.CLASSES) -> dict:
    """Accuracy, per-class accuracy and confusion matrix of `model` on every image of `shards`."""
    image_size = image_size or tuple(model.input_shape[1:3])
    dataset = flowers_data.load_dataset(shards, image_size, ordered=True).batch(batch_size)
    labels, predicted = [], []
    with flowers_data.reading(shards, image_size):
        for images, batch_labels in dataset.as_numpy_iterator():
            predicted.append(np.asarray(model.predict_on_batch(images)).argmax(axis=-1))
            labels.append(batch_labels)
    labels, predicted = np.concatenate(labels), np.concatenate(predicted)
    matrix = confusion_matrix(labels, predicted, len(classes))
    per_class = {name: (float(matrix[i, i] / matrix[i].sum()) if matrix[i].sum() else None)
                 for i, name in enumerate(classes)}
    return {"images": int(len(labels)), "accuracy": float((labels == predicted).mean()),
            "per_class_accuracy": per_class, "confusion_matrix": matrix.tolist(),
            "classes": list(classes)}
