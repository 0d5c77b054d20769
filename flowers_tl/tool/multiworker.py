"""Training across several machines (MultiWorkerMirroredStrategy from TF_CONFIG), with a small loop.

Keras 3's `model.fit` fails under MultiWorkerMirroredStrategy (it reduces a tuple of
per-replica batches while building the model: keras-team/keras#20585,
tensorflow/tensorflow#72388), so `fit_across_workers` does fit's work. Each worker
reads its own training shards (shard i, i + workers, ...) and its own validation
batches. Every replica's loss is averaged over the global batch
(`tf.nn.compute_average_loss`) and the optimizer sums the gradients of all replicas,
so every worker applies the same update. Loss and accuracy are summed over all
workers. Callbacks (the cosine learning rate, loggers, early stopping) are called as
fit calls them.
"""

import keras
import numpy as np

from .. import data as flowers_data
from ..accelerator import accelerator_scope
from ..errors import ConfigError
from ..fitting import TrainingRun
from ..messages import N_, say

TOO_FEW_SHARDS = N_("{workers} workers need at least {workers} training shards (each worker reads its own), got "
                    "{got}: use more shards or fewer validation shards.")


def fit_across_workers(model: keras.Model, run: TrainingRun) -> dict:
    """Train `model` on photos over all workers; return the Keras-style per-epoch history."""
    strategy = run.accelerator.strategy
    training = iter(strategy.distribute_datasets_from_function(lambda context: _training_batches(run, context)))
    validation = strategy.distribute_datasets_from_function(lambda context: _validation_batches(run, context))
    if not model.optimizer.built:  # its variables are made here, not inside the step
        with accelerator_scope(run.accelerator):
            model.optimizer.build(model.trainable_variables)
    train_step, validate_step = _steps(model, strategy, run.settings.global_batch_size)
    steps = run.split.steps_per_epoch(run.settings.global_batch_size)
    history = keras.callbacks.History()
    callbacks = keras.callbacks.CallbackList(
        [*run.callbacks, history], add_progbar=run.progress != 0, model=model,
        verbose=run.progress, epochs=run.epochs, steps=steps)
    model.stop_training, logs = False, {}
    callbacks.on_train_begin()
    first_epoch = getattr(model, "_initial_epoch", None) or 0  # set by BackupAndRestore, as in fit
    for epoch in range(first_epoch, run.epochs):
        callbacks.on_epoch_begin(epoch)
        sums = np.zeros(3)
        for step in range(steps):
            callbacks.on_train_batch_begin(step)
            sums += train_step(training).numpy()
            callbacks.on_train_batch_end(step, _means(sums))
        logs = {**_means(sums), **_means(sum(validate_step(batch).numpy() for batch in validation), "val_")}
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end(logs)
    return history.history


def _training_batches(run: TrainingRun, context):
    """This worker's training batches: its own shards, the per-replica batch size."""
    split = run.split
    workers, worker = context.num_input_pipelines, context.input_pipeline_id
    if len(split.training_shards) < workers:
        raise ConfigError(say(TOO_FEW_SHARDS, workers=workers,
                                got=len(split.training_shards)))
    return flowers_data.get_training_dataset(
        split.training_shards[worker::workers], run.image_size,
        context.get_per_replica_batch_size(run.settings.global_batch_size), run.seed, drop_remainder=True,
        exclude_shards=split.validation_shards, flip=run.flip, endless=True)


def _validation_batches(run: TrainingRun, context):
    """This worker's share of the validation batches."""
    batches = flowers_data.get_validation_dataset(
        run.split.validation_shards, run.image_size,
        context.get_per_replica_batch_size(run.settings.global_batch_size))
    return batches.shard(context.num_input_pipelines, context.input_pipeline_id)


def _steps(model: keras.Model, strategy, global_batch: int):
    """The compiled training and validation steps: each returns [summed loss, correct, examples] of all replicas."""
    import tensorflow as tf

    loss_of_each = keras.losses.get(model.loss)  # per-example loss, e.g. cross-entropy

    def train_replica(images, labels):
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)
            losses = loss_of_each(labels, probabilities)
            loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
            if model.losses:  # weight regularizers, if any
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return _totals(labels, probabilities, losses)

    def validate_replica(images, labels):
        probabilities = model(images, training=False)
        return _totals(labels, probabilities, loss_of_each(labels, probabilities))

    @tf.function
    def train_step(iterator):
        return strategy.reduce("SUM", strategy.run(train_replica, args=next(iterator)), axis=None)

    @tf.function
    def validate_step(batch):
        return strategy.reduce("SUM", strategy.run(validate_replica, args=batch), axis=None)

    return train_step, validate_step


def _totals(labels, probabilities, losses):
    """[summed loss, correct predictions, examples] of one replica's batch."""
    import tensorflow as tf

    predicted = tf.argmax(probabilities, axis=-1, output_type=labels.dtype)
    correct = tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32))
    return tf.stack([tf.reduce_sum(losses), correct, tf.cast(tf.size(labels), tf.float32)])


def _means(sums, prefix: str = "") -> dict:
    """Mean loss and accuracy from [summed loss, correct, examples]."""
    return {f"{prefix}loss": float(sums[0] / sums[2]), f"{prefix}accuracy": float(sums[1] / sums[2])}
