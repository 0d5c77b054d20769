"""The flowers TFRecords: shard listing, train/validation split, tf.data pipelines.

The record format (`image` JPEG bytes, `class` index into `CLASSES`, `label`...) is
written once, in `records.py`. This module only reads shards: where they come from
(the course bucket, else tf_flowers) is decided by `sources.py`. Pipelines yield
`(image, class)` pairs: float32 pixels in [0, 255] with a static shape
`[height, width, 3]`, and an int32 class. The model does its own preprocessing.
"""

import contextlib
import dataclasses
import os
import re
import struct
from typing import List, Optional, Sequence, Tuple

import tensorflow as tf

from .errors import DataError, first_line
from .messages import N_, N_plural, say, say_n
from .pictures import MAX_PICTURE_PIXELS, TOO_MANY_PIXELS
from . import records
from .records import CLASSES, feature_spec
from .rules import image_size_pair  # 192 or (192, 192) -> (height, width); also data.image_size_pair

DEFAULT_DATA_PATTERN = "gs://flowers-public/tfrecords-jpeg-192x192-2/*.tfrec"
DATA_ENV_VARIABLE = "FLOWERS_TL_DATA"
DEFAULT_IMAGE_SIZE = (records.DEFAULT_IMAGE_SIZE, records.DEFAULT_IMAGE_SIZE)
DEFAULT_VALIDATION_SHARDS = 3
SHUFFLE_BUFFER = 2048
AUTOTUNE = tf.data.AUTOTUNE

# How a split prints (DataSplit.__str__): the number agrees with "shard", in English and in Russian.
SHARDS_OF_PHOTOS = {
    "training": N_plural("{shards} training shard ({images} photos)", "{shards} training shards ({images} photos)"),
    "validation": N_plural("{shards} validation shard ({images} photos)",
                           "{shards} validation shards ({images} photos)"),
}
FOLDER_NOT_PATTERN = N_("'{pattern}' is a folder, not a file pattern. Use a glob such as '{example}'.")
CANNOT_LIST = N_("cannot list '{pattern}': {reason}. Check the network and your access to it, or set {variable} to "
                 "local shards.")
NO_SHARD_MATCHES = N_("no TFRecord file matches '{pattern}'. Check the path, or set {variable} to a pattern such as "
                      "'/data/flowers/*.tfrec' (make shards from photos with `flowers-tl convert`).")
SHARD_UNREADABLE = N_("shard '{shard}' cannot be read ({reason}); fix it or remove it from the pattern.")
SHARD_EMPTY = N_("shard '{shard}' is empty (0 bytes), maybe from an interrupted copy; delete it or make it again "
                 "with `flowers-tl convert`.")
VALIDATION_SHARDS_OUT_OF_RANGE = N_plural("validation_shards={validation_shards} must be between 1 and {most}: "
                                          "'{pattern}' has {shards} shard and training needs at least one.",
                                          "validation_shards={validation_shards} must be between 1 and {most}: "
                                          "'{pattern}' has {shards} shards and training needs at least one.")
# Where inconsistent class names were found: the shards named in the messages of `_names_of_classes`.
SHARDS_IN_FOLDER = N_plural("the {shards} shard in '{folder}'", "the {shards} shards in '{folder}'")
NO_SHARD = N_("an empty list of shards")
CLASS_WITH_TWO_LABELS = N_("class {index} has two labels in {where} ('{first}' and '{second}'): every record of a "
                           "class needs the same 'label'. Make the shards again with `flowers-tl convert`.")
NO_RECORD = N_("there is no record in {where}; make shards with `flowers-tl convert`.")
CLASS_NUMBERS_WITH_A_GAP = N_("the 'class' values of {where} are {values}, not 0..{last}: a class number is missing "
                              "or negative. Make the shards again with `flowers-tl convert`.")
CLASS_WITHOUT_LABEL = N_("class {index} of {where} has no 'label' while other classes are named ({names}); make the "
                         "shards again with `flowers-tl convert`.")
LABEL_OF_TWO_CLASSES = N_("label '{label}' names two classes in {where}; make the shards again with `flowers-tl "
                          "convert`.")
ONLY_ONE_CLASS = N_("there is only one class ('{name}') in {where}; a classifier needs at least 2.")
RECORD_HEADER_BYTES, RECORD_FOOTER_BYTES = 12, 4  # a TFRecord: length, its CRC, the record, the record's CRC
MIN_RECORD_BYTES = 100  # framing and the smallest Example holding a JPEG: a name claiming more records lies
UNREADABLE_SHARD = N_("shard '{shard}' is unreadable or corrupt: {reason}. Copy or convert it again, or remove it "
                      "from the pattern.")
TRUNCATED_SHARD = N_("shard '{shard}' is truncated or corrupted after record {records}: the next record, at byte "
                     "{offset}, does not fit in its {size} bytes. Copy or convert it again, or remove it from the "
                     "pattern.")

_FEATURES = feature_spec()  # the keys training reads; only image and class are required
_SHARD_COUNT = re.compile(r"-(\d+)\.tfrec$")
# The class names records are checked against while datasets are built (see `checking_classes`).
_CHECKED_CLASSES = [tuple(CLASSES)]


def data_pattern(pattern: Optional[str] = None) -> str:
    """The shard pattern to use: the argument, else $FLOWERS_TL_DATA, else the course bucket."""
    return pattern or os.environ.get(DATA_ENV_VARIABLE) or DEFAULT_DATA_PATTERN


def list_shards(pattern: Optional[str] = None) -> List[str]:
    """Sorted shard paths matching a glob pattern (local or gs://); it only lists, never fetches.

    Raises DataError naming the pattern when nothing matches or a folder is given.
    (`sources.find_shards` falls back to tf_flowers when the course bucket cannot be used.)
    """
    pattern = data_pattern(pattern)
    if tf.io.gfile.isdir(pattern):
        raise DataError(say(FOLDER_NOT_PATTERN, pattern=pattern, example=os.path.join(pattern, "*.tfrec")))
    try:
        shards = sorted(tf.io.gfile.glob(pattern))
    except tf.errors.OpError as error:
        raise DataError(say(CANNOT_LIST, pattern=pattern, reason=first_line(error),
                            variable=DATA_ENV_VARIABLE)) from None
    shards = [s for s in shards if not tf.io.gfile.isdir(s)]
    if not shards:
        raise DataError(say(NO_SHARD_MATCHES, pattern=pattern, variable=DATA_ENV_VARIABLE))
    _check_shard_files(shards)
    return shards


def _check_shard_files(shards: Sequence[str]) -> None:
    """DataError naming a local shard that cannot be opened or is empty (gs:// shards fail when read)."""
    for shard in shards:
        if "://" in shard:
            continue
        try:
            with open(shard, "rb") as handle:
                empty = not handle.read(1)
        except OSError as error:
            raise DataError(say(SHARD_UNREADABLE, shard=shard, reason=error.strerror or error)) from None
        if empty:
            raise DataError(say(SHARD_EMPTY, shard=shard))


def count_images(shards: Sequence[str]) -> int:
    """Number of records of `shards`, never one a shard does not hold (`count_records`)."""
    return sum(count_records(shard) for shard in shards)


def count_records(shard: str) -> int:
    """The records of one shard. A local file's are counted from its record headers (exact, and fast:
    the photos are skipped, not read). A remote shard's name (`flowers00-230.tfrec`, as `convert`
    writes it) is trusted when the file is large enough to hold that many records; otherwise the
    shard is read. DataError names a shard that is truncated or corrupt."""
    if "://" not in shard and os.path.isfile(shard):
        return _count_record_headers(shard)
    match = _SHARD_COUNT.search(os.path.basename(shard))
    if match and int(match.group(1)) * MIN_RECORD_BYTES <= tf.io.gfile.stat(shard).length:
        return int(match.group(1))
    try:
        return sum(1 for _ in tf.data.TFRecordDataset(shard))
    except tf.errors.OpError as error:
        raise DataError(say(UNREADABLE_SHARD, shard=shard, reason=_first_line(error))) from None


def _count_record_headers(shard: str) -> int:
    """Records of a local TFRecord file, by walking its headers: length (8 bytes) and CRC (4), the
    record, its CRC (4). DataError naming the shard when the last record is cut short."""
    size, records, offset = os.path.getsize(shard), 0, 0
    with open(shard, "rb") as handle:
        while offset < size:
            header = handle.read(RECORD_HEADER_BYTES)
            end = offset + RECORD_HEADER_BYTES + (struct.unpack("<Q", header[:8])[0] + RECORD_FOOTER_BYTES
                                                  if len(header) == RECORD_HEADER_BYTES else 0)
            if len(header) < RECORD_HEADER_BYTES or end > size:
                raise DataError(say(TRUNCATED_SHARD, shard=shard, records=records, offset=offset, size=size))
            records, offset = records + 1, end
            handle.seek(offset)
    return records


def shard_ids(shards: Sequence[str]) -> List[str]:
    """'name (N bytes)' of each shard: what a model and a resumable run record of the shards they used,
    the same wherever the shards are copied, different when a shard is made again."""
    return [f"{os.path.basename(shard)} ({tf.io.gfile.stat(shard).length} bytes)" for shard in shards]


@dataclasses.dataclass(frozen=True)
class DataSplit:
    """Training and validation shards, disjoint by construction, with image counts."""

    training_shards: Tuple[str, ...]
    validation_shards: Tuple[str, ...]
    training_images: int
    validation_images: int

    def steps_per_epoch(self, global_batch_size: int) -> int:
        """Training steps that see every training image about once."""
        return max(1, self.training_images // global_batch_size)

    def __str__(self) -> str:
        return ", ".join(say_n(*SHARDS_OF_PHOTOS[part], len(shards), shards=len(shards), images=images)
                         for part, shards, images in (("training", self.training_shards, self.training_images),
                                                      ("validation", self.validation_shards, self.validation_images)))


def split_shards(pattern: Optional[str] = None,
                 validation_shards: int = DEFAULT_VALIDATION_SHARDS,
                 shards: Optional[Sequence[str]] = None) -> DataSplit:
    """Split the shards: the first `validation_shards` for validation, the rest for training.

    `shards` (already found, e.g. by `sources.find_shards`) or else those `pattern` lists.
    """
    shards = list(shards) if shards is not None else list_shards(pattern)
    if not 0 < validation_shards < len(shards):
        raise DataError(say_n(*VALIDATION_SHARDS_OUT_OF_RANGE, len(shards), validation_shards=validation_shards,
                              most=len(shards) - 1, pattern=data_pattern(pattern), shards=len(shards)))
    validation, training = shards[:validation_shards], shards[validation_shards:]
    assert not set(validation) & set(training)
    return DataSplit(tuple(training), tuple(validation),
                     count_images(training), count_images(validation))


def decode_image(jpeg_bytes, image_size) -> tf.Tensor:
    """JPEG bytes to float32 RGB pixels in [0, 255] of exactly `image_size` (static shape).

    A JPEG over the pixel limit `convert` and `predict` use (`pictures.MAX_PICTURE_PIXELS`) is
    refused from its header, before it is decoded into memory.
    """
    height, width = image_size_pair(image_size)
    with tf.control_dependencies([_at_most_max_pixels(jpeg_bytes)]):
        image = tf.io.decode_jpeg(jpeg_bytes, channels=3)
    image = tf.image.resize(image, [height, width], antialias=True)
    image = tf.clip_by_value(image, 0.0, 255.0)
    return tf.ensure_shape(image, [height, width, 3])


def _at_most_max_pixels(image_bytes):
    """Assert that the picture's header claims at most MAX_PICTURE_PIXELS (pictures.TOO_MANY_PIXELS otherwise).

    JPEG and PNG headers are read (what records hold); other formats are left to their decoder.
    """
    def jpeg_pixels():
        shape = tf.cast(tf.io.extract_jpeg_shape(image_bytes), tf.int64)
        return shape[0] * shape[1]

    def png_pixels():  # width and height: big-endian 32-bit numbers at byte 16 of the IHDR chunk
        size = tf.cast(tf.io.decode_raw(tf.strings.substr(image_bytes, 16, 8), tf.int32, little_endian=False),
                       tf.int64)
        return size[0] * size[1]

    pixels = tf.case([(tf.equal(tf.strings.substr(image_bytes, 0, 2), b"\xff\xd8"), jpeg_pixels),
                      (tf.equal(tf.strings.substr(image_bytes, 0, 4), b"\x89PNG")
                       & (tf.strings.length(image_bytes) >= 24), png_pixels)],
                     default=lambda: tf.constant(0, tf.int64))
    before, after = say(TOO_MANY_PIXELS, pixels="\0", limit=MAX_PICTURE_PIXELS // 10**6).split("\0")
    return tf.debugging.Assert(pixels <= MAX_PICTURE_PIXELS,
                               [tf.strings.join([before, tf.strings.as_string(pixels), after])])


def parse_example(serialized, image_size=DEFAULT_IMAGE_SIZE, num_classes: Optional[int] = None):
    """One serialized tf.train.Example to (image float32 [H, W, 3], class int32).

    `num_classes` defaults to the classes being checked (the course's, or `checking_classes`).
    """
    num_classes = num_classes or len(_CHECKED_CLASSES[-1])
    example = tf.io.parse_single_example(serialized, _FEATURES)
    label = tf.cast(example["class"], tf.int32)
    in_range = tf.debugging.assert_less(
        tf.cast(label, tf.uint32), tf.cast(num_classes, tf.uint32),
        message=f"record 'class' is outside 0..{num_classes - 1}")
    agrees = _label_agrees_with_class(example["label"], label)
    with tf.control_dependencies([in_range, agrees]):
        label = tf.identity(label)
    return decode_image(example["image"], image_size), label


def _label_agrees_with_class(name, label):
    """Assert that a known class name in 'label' is the name of its 'class' (other names are not checked).

    The known names are the course's CLASSES, or those of `checking_classes`.
    """
    names = tf.constant(list(_CHECKED_CLASSES[-1]))
    is_course_name = tf.reduce_any(tf.equal(name, names))
    expected = tf.gather(names, tf.clip_by_value(label, 0, len(_CHECKED_CLASSES[-1]) - 1))
    message = tf.strings.join(["record 'label' is '", name, "' but its 'class' ",
                               tf.strings.as_string(label), " is '", expected, "'"])
    return tf.debugging.Assert(
        tf.logical_or(tf.logical_not(is_course_name), tf.equal(name, expected)), [message])


def find_bad_record(shards: Sequence[str], image_size=DEFAULT_IMAGE_SIZE,
                    num_classes: Optional[int] = None) -> Optional[str]:
    """Read and decode every record of `shards`; a message naming the first bad shard and record, or None.

    Slow (one pass over all the data), so it runs only after reading has failed.
    """
    num_classes = num_classes or len(_CHECKED_CLASSES[-1])
    for shard in shards:
        position = 0
        try:
            for serialized in tf.data.TFRecordDataset(shard):
                position += 1
                parse_example(serialized, image_size, num_classes)
        except tf.errors.DataLossError as error:
            if not position:  # not even one record: not a TFRecord file (say, /dev/zero or a JPEG)
                return (f"shard '{shard}' is not a TFRecord file: its first record cannot be read "
                        f"({_first_line(error)}). Use shards made by `flowers-tl convert`, or remove it "
                        "from the pattern.")
            return (f"shard '{shard}' is truncated or corrupted after record {position - 1} "
                    f"({_first_line(error)}). Copy or convert it again, or remove it from the pattern.")
        except (tf.errors.OpError, UnicodeDecodeError) as error:
            return (f"record {position} of shard '{shard}' is not a valid flowers record: "
                    f"{_first_line(error)}. Records need 'image' (JPEG bytes) and 'class' "
                    f"(0..{num_classes - 1}); make shards with `flowers-tl convert`.")
    return None


def _first_line(error) -> str:
    """The useful first line of a TensorFlow error, without its '{{function_node ...}}' prefix."""
    if isinstance(error, UnicodeDecodeError):  # TensorFlow's message quoted undecodable bytes
        return "it cannot be parsed as a tf.train.Example"
    line = first_line(error, limit=None).replace("\\'", "'").replace('\\"', '"')
    line = re.sub(r"^\{\{[^}]*\}\}\s*|^Expected .* to be true\. Summarized data: b?", "", line)
    line = re.sub(r"\s*\[Op:\w+\].*$", "", line).strip()
    if len(line) > 1 and line[0] == line[-1] and line[0] in "'\"":  # the quotes of a summarized bytes value
        line = line[1:-1]
    return line.rstrip(".")[:300]


def class_names(shards: Sequence[str]) -> List[str]:
    """The class names of `shards`, index by index, read from their records' 'class' and 'label'.

    Only those two keys are parsed (no photo is decoded), so this costs about one read of
    the files. The names must be consistent: one label per class index, indices 0..n-1.
    Records that name only the course's flowers at the course's indices (or carry no label
    at indices 0..4) mean the course's CLASSES, all five. Raises DataError naming the shards.
    """
    keys = {"class": _FEATURES["class"], "label": _FEATURES["label"]}
    dataset = tf.data.TFRecordDataset(list(shards)).batch(1024).map(lambda batch: tf.io.parse_example(batch, keys))
    pairs = set()
    with reading(shards):
        for batch in dataset.as_numpy_iterator():
            pairs.update(zip(batch["class"].tolist(), batch["label"].tolist()))
    return _names_of_classes(pairs, _where(shards))


def _where(shards: Sequence[str]) -> str:
    """'the N shards in FOLDER', to name a set of shards in a message (in the chosen language)."""
    if not shards:
        return say(NO_SHARD)
    return say_n(*SHARDS_IN_FOLDER, len(shards), shards=len(shards), folder=os.path.dirname(shards[0]) or ".")


def _names_of_classes(pairs, where: str) -> List[str]:
    """Class names from (class index, label bytes) pairs; DataError when they are not consistent."""
    named = {}
    for index, label in sorted(pairs):
        name = label.decode("utf-8", "replace")
        if name and named.setdefault(index, name) != name:
            raise DataError(say(CLASS_WITH_TWO_LABELS, index=index, where=where, first=named[index], second=name))
    indices = sorted({index for index, _ in pairs})
    if not indices:
        raise DataError(say(NO_RECORD, where=where))
    if all(0 <= index < len(CLASSES) for index in indices) and \
            all(CLASSES[index] == name for index, name in named.items()):
        return list(CLASSES)
    if indices != list(range(len(indices))):
        raise DataError(say(CLASS_NUMBERS_WITH_A_GAP, where=where, values=_few(indices), last=len(indices) - 1))
    unnamed = [index for index in indices if index not in named]
    if unnamed:
        raise DataError(say(CLASS_WITHOUT_LABEL, index=unnamed[0], where=where, names=_few(list(named.values()))))
    names = [named[index] for index in indices]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise DataError(say(LABEL_OF_TWO_CLASSES, label=twice[0], where=where))
    if len(names) < 2:
        raise DataError(say(ONLY_ONE_CLASS, name=names[0], where=where))
    return names


def _few(values) -> str:
    """Up to 8 values, comma-separated, for a message."""
    return ", ".join(str(value) for value in values[:8]) + (", ..." if len(values) > 8 else "")


@contextlib.contextmanager
def checking_classes(names: Sequence[str]):
    """Check records against `names` (not the course's CLASSES) in the datasets built inside the block
    (`names` None or empty: the names checked already).

    tf.data traces `parse_example` when a dataset is built, so the names are read then;
    `train` builds every dataset inside this block for shards with their own classes.
    """
    _CHECKED_CLASSES.append(tuple(names) if names else _CHECKED_CLASSES[-1])
    try:
        yield
    finally:
        _CHECKED_CLASSES.pop()


@contextlib.contextmanager
def reading(shards: Sequence[str], image_size=DEFAULT_IMAGE_SIZE):
    """Turn a tf.data read error inside the block into a DataError naming the bad shard and record.

    Training stops instead of going on with part of the data. Errors that no
    record explains (a model problem, say) are raised unchanged.
    """
    try:
        yield
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError,
            UnicodeDecodeError):  # the last: TensorFlow's message quoted bytes that are not UTF-8
        problem = find_bad_record(shards, image_size)
        if problem is None:
            raise
        raise DataError(problem) from None


def load_dataset(shards: Sequence[str], image_size=DEFAULT_IMAGE_SIZE,
                 ordered: bool = False, exclude_shards: Sequence[str] = ()) -> tf.data.Dataset:
    """Unbatched (image, class) pairs from shards, read in parallel.

    With `ordered=False` records come in whatever order is fastest (the course's
    choice); `ordered=True` keeps file order so results are reproducible.
    Records whose JPEG bytes also appear in `exclude_shards` are left out: the
    flowers photos contain a few duplicates, and training must never see a
    validation photo.
    """
    dataset = _records(shards, ordered)
    if exclude_shards:
        excluded = tf.constant(image_fingerprints(exclude_shards))
        dataset = dataset.filter(
            lambda record: tf.logical_not(tf.reduce_any(tf.equal(_fingerprint(record), excluded))))
    return dataset.map(lambda record: parse_example(record, image_size),
                       num_parallel_calls=AUTOTUNE)


def _records(shards: Sequence[str], ordered: bool) -> tf.data.Dataset:
    """The serialized records of `shards`, read in parallel; `ordered`: always in the same order."""
    options = tf.data.Options()
    options.deterministic = ordered
    dataset = tf.data.TFRecordDataset(list(shards), num_parallel_reads=AUTOTUNE)
    return dataset.with_options(options)


def file_names(shards: Sequence[str]) -> List[str]:
    """The 'filename' of each record of `shards` ("" where a record has none), in the order of
    `load_dataset(shards, ordered=True)`: the order `get_validation_dataset` and `explain.top_losses`
    number the photos in, so photo #N of a validation set came from `file_names(shards)[N]`.
    `convert` writes each photo's path relative to its folder there; no photo is decoded."""
    keys = {"filename": records.feature_spec(["filename"])["filename"]}
    dataset = _records(shards, ordered=True).map(lambda record: tf.io.parse_single_example(record, keys)["filename"])
    with reading(shards):
        return [name.decode("utf-8", "replace") for name in dataset.as_numpy_iterator()]


def _fingerprint(record) -> tf.Tensor:
    """A 64-bit fingerprint of a record's JPEG bytes (same photo bytes, same fingerprint)."""
    image = tf.io.parse_single_example(record, {"image": _FEATURES["image"]})["image"]
    return tf.bitcast(tf.fingerprint(tf.reshape(image, [1])), tf.int64)[0]


def image_fingerprints(shards: Sequence[str]):
    """Fingerprints (int64 numpy array) of the JPEG bytes of every record of `shards`."""
    import numpy as np

    dataset = tf.data.TFRecordDataset(list(shards)).map(_fingerprint, num_parallel_calls=AUTOTUNE)
    with reading(shards):
        return np.fromiter(dataset.as_numpy_iterator(), dtype=np.int64)


def _pixels_as_uint8(image, label):
    return tf.cast(tf.round(image), tf.uint8), label


def _pixels_as_float(image, label):
    return tf.cast(image, tf.float32), label


def get_training_dataset(shards: Sequence[str], image_size=DEFAULT_IMAGE_SIZE,
                         batch_size: int = 64, seed: Optional[int] = None,
                         drop_remainder: bool = False,
                         exclude_shards: Sequence[str] = (), flip: bool = False,
                         images: Optional[int] = None, endless: bool = False) -> tf.data.Dataset:
    """Shuffled batches of the training photos, one epoch long: `model.fit(dataset, epochs=...)`.

    The dataset knows its length, `images // batch_size` batches (`images`: counted from the
    shards unless given), so Keras ends every epoch by itself and `steps_per_epoch` is not needed.
    Each pass (each epoch) draws full batches from a fresh shuffle of the photos, repeated as
    needed. `endless=True` gives the unending stream instead, for a loop that counts its own steps.
    Decoded images are cached as uint8 after the first pass (4x smaller than float32).
    Pass the validation shards as `exclude_shards` to drop duplicates of validation photos.
    `flip` mirrors each photo left-right at random, a flower seen in a mirror being a flower.
    """
    images = count_images(shards) if images is None else images
    dataset = load_dataset(shards, image_size, ordered=seed is not None,
                           exclude_shards=exclude_shards)
    dataset = dataset.map(_pixels_as_uint8, num_parallel_calls=AUTOTUNE).cache()
    dataset = dataset.repeat().shuffle(SHUFFLE_BUFFER, seed=seed)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if not endless:
        dataset = dataset.take(max(1, images // batch_size))  # one epoch: Keras knows where it ends
    dataset = dataset.map(_pixels_as_float, num_parallel_calls=AUTOTUNE)
    if flip:
        dataset = dataset.map(lambda images, labels: (tf.image.random_flip_left_right(images, seed=seed), labels),
                              num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def get_validation_dataset(shards: Sequence[str], image_size=DEFAULT_IMAGE_SIZE,
                           batch_size: int = 64, drop_remainder: bool = False,
                           cache: bool = True, limit: Optional[int] = None) -> tf.data.Dataset:
    """Batches of every validation image once (or of the first `limit`), in file order.

    The dataset knows how many batches it holds (its records are counted first), so
    Keras ends each validation pass quietly instead of warning "Your input ran out of data".
    """
    images = sum(count_records(shard) for shard in shards)
    dataset = load_dataset(shards, image_size, ordered=True)
    if limit is not None and limit < images:
        images, dataset = limit, dataset.take(limit)
    if cache:
        dataset = dataset.map(_pixels_as_uint8, num_parallel_calls=AUTOTUNE).cache()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    batches = images // batch_size if drop_remainder else -(-images // batch_size)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.map(_pixels_as_float, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def images_and_labels(dataset: tf.data.Dataset, count: int):
    """The first `count` (images, labels) of a dataset as numpy arrays (batched or not)."""
    import numpy as np

    images, labels = [], []
    for image, label in dataset.unbatch() if _is_batched(dataset) else dataset:
        images.append(image.numpy())
        labels.append(int(label.numpy()))
        if len(images) == count:
            break
    return np.stack(images), np.array(labels)


def _is_batched(dataset: tf.data.Dataset) -> bool:
    image_spec = dataset.element_spec[0]
    return image_spec.shape.rank == 4
