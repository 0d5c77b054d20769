"""The frozen part of a model, computed once per photo and kept in memory.

A frozen layer gives the same output for a photo in every epoch. `FrozenPart.of(model)`
finds where a model's frozen start ends: after the frozen MobileNetV2 when only the
head learns, or, when the top blocks are fine-tuned, at the end of the last frozen
block (`cut_points`: where a single tensor flows, such as `block_12_add`). It splits
the model there into `lower` and `upper`, both made of the model's own layers.
`ActivationCache` runs `lower` once over the photos and keeps its outputs as float16
(`ACTIVATIONS`: one entry, alive as long as the Python process or notebook kernel,
replaced when another frozen part or split comes, freed by `ACTIVATIONS.clear()`),
in memory, or in a file on disk when they would not fit (`activation_file`).
`FrozenPart.fit` trains `upper` on them: the one entry point `training.train` calls.
"""

import dataclasses
import hashlib
import math
import time
from typing import TYPE_CHECKING, List, Optional, Tuple

import keras
import numpy as np

from . import data as flowers_data
from .accelerator import accelerator_scope
from .errors import DataError
from .fitting import TrainingRun
from .memory import place_for
from .messages import N_, say

if TYPE_CHECKING:  # the disk's machinery: imported when the activations go to disk, not before
    from .activation_file import ActivationFile, ActivationFolder

# Layers that are deterministic while training and own no weights: a frozen part may hold them.
_STATELESS_LAYERS = (keras.layers.InputLayer, keras.layers.Rescaling, keras.layers.Resizing,
                     keras.layers.ReLU, keras.layers.Activation, keras.layers.Add,
                     keras.layers.ZeroPadding2D)
ACTIVATION_BATCH_SIZE = 32  # small batches keep the backbone's activations, and peak memory, low

FEATURE_PASS = N_("Running the frozen layers once over {images} photos; "
                  "the epochs then train only the layers after them.")
NO_IMAGE_FOR_FEATURES = N_("no image to compute features for: the shards are empty, or every training photo is also "
                           "a validation photo. Add photos or choose other shards.")


class ActivationCache:
    """The activations of one frozen part over one split, kept between trainings.

    Notebook cells that train several heads on the same frozen backbone (Flatten,
    GlobalAveragePooling, an extra Dense layer) then skip the backbone entirely.
    One entry at a time (a few hundred MB of float16): a new frozen part or split
    replaces it, and `clear()` frees it. Activations too big for the memory left go
    to a file in a private folder under `folder` (default: the system's temporary folder).
    """

    def __init__(self, folder: Optional[str] = None) -> None:
        self.folder = folder
        self._key = None
        self._arrays = None
        self._disk: Optional["ActivationFolder"] = None

    def get(self, lower: keras.Model, split: flowers_data.DataSplit, image_size, verbose: int = 0):
        """(training activations, labels, validation activations, labels) of `lower`.

        With `verbose`, the one pass over the photos shows a sentence and a Keras progress bar.
        """
        key = (_weights_fingerprint(lower), split.training_shards, split.validation_shards,
               flowers_data.image_size_pair(image_size))
        if key != self._key:
            self.clear()
            images = split.training_images + split.validation_images
            if verbose:
                print(say(FEATURE_PASS, images=images))
            # The two sets are batched apart, so each may end with a part batch: count them apart.
            batches = (math.ceil(split.training_images / ACTIVATION_BATCH_SIZE)
                       + math.ceil(split.validation_images / ACTIVATION_BATCH_SIZE))
            self._disk = self._folder_if_too_big(lower, images)
            progress = keras.utils.Progbar(batches, verbose=verbose, unit_name="batch") if verbose else None
            train_x, train_y = extract_features(
                lower, flowers_data.load_dataset(split.training_shards, image_size, ordered=True,
                                                 exclude_shards=split.validation_shards),
                ACTIVATION_BATCH_SIZE, progress, self._new_file("training.npy", lower, split.training_images))
            val_x, val_y = extract_features(
                lower, flowers_data.load_dataset(split.validation_shards, image_size, ordered=True),
                ACTIVATION_BATCH_SIZE, progress, self._new_file("validation.npy", lower, split.validation_images))
            done = math.ceil(len(train_y) / ACTIVATION_BATCH_SIZE) + math.ceil(len(val_y) / ACTIVATION_BATCH_SIZE)
            if progress is not None and done < progress.target:  # duplicates left out of training
                progress.target = done
                progress.update(done, finalize=True)
            self._key, self._arrays = key, (train_x, train_y, val_x, val_y)
        return self._arrays

    @property
    def folder_on_disk(self) -> Optional[str]:
        """The private folder that holds the activations when they are on disk, else None."""
        return self._disk.path if self._disk is not None else None

    def clear(self) -> None:
        """Free the memory, and delete the file of activations kept on disk."""
        self._key = self._arrays = None
        if self._disk is not None:
            self._disk.remove()
            self._disk = None

    def _folder_if_too_big(self, lower: keras.Model, images: int) -> Optional["ActivationFolder"]:
        """A private folder for the activations of `images` photos when memory cannot hold them
        (`memory.place_for` decides), else None; the one line that says so."""
        size = images * int(np.prod(lower.output_shape[1:])) * np.dtype(np.float16).itemsize
        if place_for(size, images) == "memory":
            return None
        from . import activation_file  # the disk's machinery, loaded only when it is needed

        folder = activation_file.ActivationFolder(size, images, self.folder)
        activation_file.tell_on_disk(folder, size, images)
        return folder

    def _new_file(self, name: str, lower: keras.Model, capacity: int) -> Optional["ActivationFile"]:
        """A file for `capacity` photos' activations when they go to disk, else None (memory)."""
        if self._disk is None:
            return None
        return self._disk.new_file(name, lower.output_shape[1:], capacity)


ACTIVATIONS = ActivationCache()  # the course's one cache, shared by every `train()` of the session


def _is_frozen(layer) -> bool:
    """True when `layer` gives the same output for a photo in every epoch of training."""
    if isinstance(layer, keras.Model):
        return all(_is_frozen(inner) for inner in layer.layers)
    if isinstance(layer, _STATELESS_LAYERS):
        return True
    # Weighted layers (convolutions, frozen BatchNormalization) are deterministic once frozen.
    return bool(layer.weights) and not layer.trainable_weights


def cut_points(network: keras.Model) -> List[int]:
    """Indices of the layers of a functional `network` whose output is all that flows past them.

    Cutting there splits the network in two models joined by one tensor: in
    MobileNetV2, the end of every block (`block_12_add`, `block_10_project_BN`, ...).
    """
    position = {id(layer): index for index, layer in enumerate(network.layers)}
    sources = []
    for layer in network.layers:
        inputs = [position[id(tensor._keras_history.operation)]
                  for node in layer._inbound_nodes for tensor in node.input_tensors]
        sources.append(inputs)
    points = []
    for index in range(len(network.layers) - 1):
        crossing = {source for later in sources[index + 1:] for source in later if source <= index}
        if crossing == {index}:
            points.append(index)
    return points


def _last_frozen_cut(network: keras.Model) -> Optional[keras.layers.Layer]:
    """The last layer of `network` at a cut point before which everything is frozen, or None."""
    frozen = 0
    while frozen < len(network.layers) and _is_frozen(network.layers[frozen]):
        frozen += 1
    candidates = [index for index in cut_points(network) if index < frozen]
    if not candidates or not any(layer.weights for layer in network.layers[: candidates[-1] + 1]):
        return None
    return network.layers[candidates[-1]]


@dataclasses.dataclass
class FrozenPart:
    """A model split in two: its frozen start (`lower`) and the rest that learns (`upper`).

    Both are made of the model's own layers, so training `upper` trains the model.
    `cut` names the layer where `lower` ends: the backbone's when only the head
    learns, or a block's end inside MobileNetV2 when its top blocks learn.
    """

    lower: keras.Model
    upper: keras.Model
    cut: str
    feature_time_s: float = 0.0  # the time of the one pass over `lower`, once `fit` ran

    @classmethod
    def of(cls, model: keras.Model, accelerator=None) -> Optional["FrozenPart"]:
        """The frozen part of a Sequential model worth computing once, or None."""
        if not isinstance(model, keras.Sequential):
            return None
        layers, end = model.layers, 0
        for index, layer in enumerate(layers):
            if _is_frozen(layer):
                end = index + 1 if layer.weights else end
                continue
            cut = _last_frozen_cut(layer) if isinstance(layer, keras.Model) else None
            if cut is not None:  # a backbone frozen up to a block
                inner = layer
                with accelerator_scope(accelerator):
                    lower = keras.Sequential([keras.Input(model.input_shape[1:]), *layers[:index],
                                              keras.Model(inner.input, cut.output, name=f"{inner.name}_lower")])
                    upper = keras.Sequential([keras.Input(cut.output.shape[1:]),
                                              keras.Model(cut.output, inner.output, name=f"{inner.name}_upper"),
                                              *layers[index + 1:]])
                return cls(lower, upper, cut.name)
            break
        if not end or end == len(layers):
            return None
        with accelerator_scope(accelerator):
            lower = keras.Sequential([keras.Input(model.input_shape[1:]), *layers[:end]])
            upper = keras.Sequential([keras.Input(lower.output_shape[1:]), *layers[end:]])
        return cls(lower, upper, layers[end - 1].name)

    def fit(self, model: keras.Model, run: TrainingRun, cache: ActivationCache = ACTIVATIONS) -> dict:
        """Train `upper` (and so `model`) on `lower`'s cached activations; Keras' per-epoch history.

        `upper` is compiled as `model` was, with `model`'s own optimizer: its state is the
        model's, so a saved model holds it (and loads without Keras' optimizer warning).
        """
        start = time.perf_counter()
        train_x, train_y, val_x, val_y = cache.get(self.lower, run.split, run.image_size, run.progress)
        self.feature_time_s = time.perf_counter() - start
        settings = run.settings
        global_batch = settings.global_batch_size
        train_x, train_y = whole_batches(train_x, train_y, global_batch if settings.drop_remainder
                                         else settings.batch_multiple)
        val_x, val_y = whole_batches(val_x, val_y, settings.batch_multiple)
        compile_arguments = keras.saving.deserialize_keras_object(model.get_compile_config())
        with accelerator_scope(run.accelerator):
            self.upper.compile(**{**compile_arguments, "optimizer": model.optimizer,
                                  "steps_per_execution": settings.steps_per_execution})
        history = self.upper.fit(
            activation_batches(train_x, train_y, global_batch, shuffle=True, flip=run.flip),
            validation_data=activation_batches(val_x, val_y, global_batch), epochs=run.epochs,
            callbacks=list(run.callbacks), verbose=run.verbose,
            shuffle=False)  # the batches above are shuffled already
        return history.history


def extract_features(extractor: keras.Model, dataset, batch_size: int,
                     progress: Optional[keras.utils.Progbar] = None,
                     into: Optional["ActivationFile"] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Run `extractor` once over an unbatched (image, label) dataset; float16 outputs, int labels.

    `progress`, when given, advances by one for each batch. `into`, when given, receives the
    outputs batch by batch and is returned in their place (memory holds one batch at a time).
    """
    features: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    for images, batch_labels in dataset.batch(batch_size).as_numpy_iterator():
        outputs = predict_batch(extractor, images, batch_size).astype(np.float16)
        if into is None:
            features.append(outputs)
        else:
            into.write(outputs)
        labels.append(batch_labels)
        if progress is not None:
            progress.add(1)
    if not labels:
        raise DataError(say(NO_IMAGE_FOR_FEATURES))
    if into is not None:
        into.finish()
        return into, np.concatenate(labels)
    return np.concatenate(features), np.concatenate(labels)


def predict_batch(model: keras.Model, images: np.ndarray, batch_size: int) -> np.ndarray:
    """`model`'s outputs for a batch of at most `batch_size` images.

    A smaller batch (the last one) is padded to `batch_size`: one input shape means one
    traced function and one set of oneDNN kernels (a new shape costs seconds on a CPU).
    """
    missing = batch_size - len(images)
    if missing:
        images = np.concatenate([images, np.zeros((missing, *images.shape[1:]), images.dtype)])
    return np.asarray(model.predict_on_batch(images))[: batch_size - missing]


def _weights_fingerprint(extractor: keras.Model) -> str:
    """A hash of the layers' kinds, settings and weights: equal only for the same frozen part.

    Names are left out: the notebook's experiments build the same rescaling and backbone
    again (`rescaling`, `rescaling_1`), and they share one pass over the photos.
    """
    digest = hashlib.sha256()
    for layer in extractor.layers:
        settings = {key: value for key, value in layer.get_config().items() if key != "name"}
        digest.update(f"{type(layer).__name__}{settings if not layer.weights else ''}".encode())
        for weight in layer.weights:
            digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


def activation_batches(activations, labels: np.ndarray, batch_size: int, shuffle: bool = False, flip: bool = False):
    """Batches of float32 activations from float16 ones, without a float32 copy of them all.

    `activations`: an array (in memory: `shuffle` mixes the photos anew each epoch) or an
    `activation_file.ActivationFile` (on disk: `shuffle` mixes the order of its batches of
    neighbouring photos anew each epoch, and one batch at a time is read). `flip` mirrors each
    example's activation map left-right at random (as a flipped photo would be): only maps with
    a width (rank 4) can be flipped.
    """
    import tensorflow as tf

    if not isinstance(activations, np.ndarray):  # an ActivationFile on disk
        batches = activations.batches(labels, batch_size, shuffle)
    else:
        table, classes = tf.constant(activations), tf.constant(labels)
        indices = tf.data.Dataset.range(len(labels))
        if shuffle:
            indices = indices.shuffle(len(labels), reshuffle_each_iteration=True)
        batches = indices.batch(batch_size).map(lambda index: (tf.gather(table, index), tf.gather(classes, index)))

    def as_float32(batch, batch_labels):
        batch = tf.cast(batch, tf.float32)
        if flip and activations.ndim == 4:
            mirrored = tf.random.uniform([tf.shape(batch)[0], 1, 1, 1]) < 0.5
            batch = tf.where(mirrored, tf.reverse(batch, axis=[2]), batch)
        return batch, batch_labels

    return batches.map(as_float32, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def whole_batches(features: np.ndarray, labels: np.ndarray, multiple: int):
    """Keep the largest count of examples that is a multiple of `multiple`.

    Drops at most `multiple - 1` examples: TPUs need full batches, and JAX's
    DataParallel splits every batch evenly over its devices.
    """
    usable = len(labels) - len(labels) % multiple
    return features[:usable], labels[:usable]
