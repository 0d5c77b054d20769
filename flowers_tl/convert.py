"""Pictures to TFRecords: the course's "convert your photos" step.

Two sources, one output format (`records.py`, which `data.py` reads):

* `convert_folder(folder, output)`: a folder with one sub-folder of photos per
  class. Class names are the sorted sub-folder names (the course's `CLASSES`
  when the folders are daisy, dandelion, roses, sunflowers, tulips). Photos in
  nested folders inside a class folder count for that class.
* `convert_tf_flowers(output)`: tensorflow-datasets' `tf_flowers`, whose label
  order (dandelion, daisy, tulips, sunflowers, roses) is mapped by name to the
  course's alphabetical order.

Every photo is made RGB (grayscale, PNG, CMYK and transparent pictures
convert), crop-filled to a square and re-encoded as JPEG. Files that are not
usable pictures are skipped and listed by name in the report. The records are
shuffled with a seed and split into shards named `flowersNN-COUNT.tfrec`.

Nothing is half-written: shards are written under temporary names and renamed
only when every shard is complete, so an interrupted run leaves the output
folder as it was. An output folder that already holds `.tfrec` files is only
replaced with `overwrite=True`. A class folder without any picture file is an
error (its class could never be learned, and skipping it would shift every
later class number).
"""

import dataclasses
import glob
import hashlib
import io
import json
import os
import random
import sys
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import online
from .errors import ConfigError, DataError, OutputExistsError
from .pictures import crop_fill, encode_jpeg, is_picture_name, to_rgb
from .quiet import absl_warnings_off
from .records import CLASSES, decode as decode_record, encode as encode_record

DEFAULT_IMAGE_SIZE = 192
DEFAULT_SHARDS = 16
DEFAULT_SEED = 42
MIN_IMAGE_SIZE = 32
JPEG_QUALITY = 90
CACHE_ENV_VARIABLE = "FLOWERS_TL_CACHE"
TF_FLOWERS_LABELS = ["dandelion", "daisy", "tulips", "sunflowers", "roses"]  # tfds' own order
LOCAL_COPY_REMEDY = ("set FLOWERS_TL_DATA to a pattern of local shards (e.g. '/data/flowers/*.tfrec') and "
                     "FLOWERS_TL_WEIGHTS to a local MobileNetV2 no-top .h5 file, or make shards from a "
                     "photo folder with `flowers-tl convert --folder`.")
TF_FLOWERS_OFFLINE = ("could not load tensorflow-datasets' tf_flowers: you are offline (no answer from "
                      "storage.googleapis.com) and it was never downloaded. Online, it is downloaded once "
                      "(about 220 MB); offline, " + LOCAL_COPY_REMEDY)
_DONE_FILE = "conversion.json"


@dataclasses.dataclass
class ConversionReport:
    """What a conversion wrote: images per class, the shard files, and the files it skipped."""

    output: str
    image_size: int
    classes: List[str]
    images_per_class: Dict[str, int]
    shards: List[str]
    skipped: List[Tuple[str, str]] = dataclasses.field(default_factory=list)  # (file, reason)

    @property
    def images(self) -> int:
        """Number of images written, all classes together."""
        return sum(self.images_per_class.values())

    def __str__(self) -> str:
        names = [os.path.basename(s) for s in self.shards]
        shown = names[0] if len(names) == 1 else f"{names[0]} ... {names[-1]}"
        lines = [f"Wrote {self.images} images of {self.image_size}x{self.image_size} "
                 f"in {len(self.shards)} shard(s) to {self.output} ({shown})"]
        lines += [f"  {index} {name:<12} {self.images_per_class[name]:>6} images"
                  for index, name in enumerate(self.classes)]
        missing = [name for name in self.classes if not self.images_per_class[name]]
        if missing:
            lines.append(f"  Note: no photos of {missing}; the model will never predict them.")
        if self.classes != CLASSES:
            lines.append(f"  Note: these {len(self.classes)} classes are not the course's {CLASSES}; "
                         f"build the model with num_classes={len(self.classes)}.")
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)} file(s):")
            lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


# ---------------------------------------------------------------- from a folder

def convert_folder(folder: str, output: str, image_size: int = DEFAULT_IMAGE_SIZE,
                   shards: int = DEFAULT_SHARDS, seed: int = DEFAULT_SEED,
                   overwrite: bool = False) -> ConversionReport:
    """Convert `folder/<class name>/**/<photo>` into shards in `output`.

    Raises DataError for a missing folder, no class sub-folder or an empty class
    folder; OutputExistsError when `output` already has shards and not `overwrite`.
    """
    _check_arguments(image_size, shards)
    classes, photos, skipped = list_class_photos(folder)
    _check_output(output, overwrite)
    random.Random(seed).shuffle(photos)

    def make_record(item):
        path, class_index = item
        raw = _read_file(path)
        relative = os.path.relpath(path, folder)
        return _example(raw, _picture_from_bytes(raw), class_index, classes, image_size,
                        filename=relative.replace(os.sep, "/")), classes[class_index]

    present = {classes[class_index] for _, class_index in photos}
    report = _write_shards(output, photos, make_record, lambda item: item[0], classes, present,
                           image_size, shards, overwrite)
    report.skipped = skipped + report.skipped
    return report


def list_class_photos(folder: str) -> Tuple[List[str], List[Tuple[str, int]], List[Tuple[str, str]]]:
    """Class names, (picture path, class index) pairs, and (file, reason) for files left out.

    Class names are the sorted sub-folder names, or the course's `CLASSES` when
    every sub-folder is named after a course flower. Hidden files and folders
    (names starting with '.') are ignored.
    """
    if not os.path.isdir(folder):
        what = "is a file, not a folder" if os.path.exists(folder) else "does not exist"
        raise DataError(f"photo folder '{folder}' {what}. Give a folder with one sub-folder "
                        "of photos per class, e.g. photos/daisy/*.jpg, photos/roses/*.jpg.")
    entries = sorted(e for e in os.listdir(folder) if not e.startswith("."))
    folders = [e for e in entries if os.path.isdir(os.path.join(folder, e))]
    skipped = [(os.path.join(folder, e), "not inside a class folder")
               for e in entries if e not in folders]
    if len(folders) < 2:
        raise DataError(f"photo folder '{folder}' has {len(folders)} class sub-folder(s); it needs "
                        "at least 2, one per class (e.g. photos/daisy/, photos/roses/).")
    # Course flower names keep the course's numbering, even when only some are present.
    classes = list(CLASSES) if set(folders) <= set(CLASSES) else folders
    photos: List[Tuple[str, int]] = []
    for name in folders:
        class_index, found = classes.index(name), 0
        for path in _files_below(os.path.join(folder, name)):
            if is_picture_name(path):
                photos.append((path, class_index))
                found += 1
            else:
                skipped.append((path, "not a picture file name (use .jpg, .png...)"))
        if not found:
            raise DataError(f"class folder '{os.path.join(folder, name)}' has no picture file. "
                            "Add photos of that class, or remove the folder.")
    return classes, photos, skipped


def _files_below(folder: str) -> List[str]:
    """Every non-hidden file under `folder`, nested folders included, in a fixed order."""
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        found += [os.path.join(root, f) for f in sorted(files) if not f.startswith(".")]
    return found


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise DataError(f"cannot read it ({error.strerror or error})") from None


# ---------------------------------------------------------------- from tensorflow-datasets

def convert_tf_flowers(output: str, image_size: int = DEFAULT_IMAGE_SIZE,
                       shards: int = DEFAULT_SHARDS, seed: int = DEFAULT_SEED,
                       overwrite: bool = False, data_dir: Optional[str] = None) -> ConversionReport:
    """Download (once, by tensorflow-datasets) and convert `tf_flowers` into shards in `output`.

    Offline, with no copy of tf_flowers in tensorflow-datasets' folder, it fails in seconds
    (`online.is_online`) instead of letting tensorflow-datasets retry for minutes.
    """
    _check_arguments(image_size, shards)
    _check_output(output, overwrite)
    try:
        import tensorflow_datasets as tfds

        with absl_warnings_off():
            prepared = tfds.builder("tf_flowers", data_dir=data_dir).is_prepared()
        if not prepared and not online.is_online():
            raise DataError(TF_FLOWERS_OFFLINE)
        dataset, info = tfds.load("tf_flowers", split="train", with_info=True, data_dir=data_dir,
                                  decoders={"image": tfds.decode.SkipDecoding()})
    except DataError:
        raise
    except Exception as error:  # missing package, broken download: one clear message
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise DataError(
            f"could not load tensorflow-datasets' tf_flowers: {type(error).__name__}: {first}. "
            f"Remedies: {LOCAL_COPY_REMEDY}") from None
    return convert_labeled_dataset(dataset, info.features["label"].names, output,
                                   image_size=image_size, shards=shards, seed=seed,
                                   overwrite=overwrite, source="tf_flowers")


def convert_labeled_dataset(dataset, label_names: Sequence[str], output: str,
                            image_size: int = DEFAULT_IMAGE_SIZE, shards: int = DEFAULT_SHARDS,
                            seed: int = DEFAULT_SEED, overwrite: bool = False,
                            source: str = "dataset") -> ConversionReport:
    """Convert a tfds-like `tf.data.Dataset` of {"image", "label"} into shards.

    `image` is either encoded picture bytes or a uint8 [height, width, channels]
    array; `label` indexes `label_names`. Classes are put in alphabetical order by
    name (the course's `CLASSES` when every name is a course flower), which maps
    tf_flowers' labels onto the course's numbering.
    """
    _check_arguments(image_size, shards)
    _check_output(output, overwrite)
    classes = list(CLASSES) if set(label_names) <= set(CLASSES) else sorted(label_names)
    to_course_index = [classes.index(name) for name in label_names]
    records: List[Tuple[str, object]] = []
    skipped: List[Tuple[str, str]] = []
    for number, element in enumerate(dataset.as_numpy_iterator()):
        label = int(element["label"])
        name = f"{source} record {number}"
        if not 0 <= label < len(label_names):
            skipped.append((name, f"label {label} is outside 0..{len(label_names) - 1}"))
            continue
        class_index = to_course_index[label]
        try:
            raw, picture = _image_from_element(element["image"])
            record = _example(raw, picture, class_index, classes, image_size,
                              filename=f"{classes[class_index]}/{source}-{number:05d}.jpg")
        except DataError as error:
            skipped.append((name, str(error)))
            continue
        records.append((name, (record, classes[class_index])))
    if not records:
        raise DataError(f"{source} has no usable picture; nothing was written to '{output}'.")
    random.Random(seed).shuffle(records)
    present = {class_name for _, (_, class_name) in records}
    report = _write_shards(output, records, lambda item: item[1], lambda item: item[0], classes,
                           present, image_size, shards, overwrite)
    report.skipped = skipped + report.skipped
    return report


def _image_from_element(image) -> Tuple[bytes, object]:
    """(bytes to fingerprint, RGB picture) from encoded bytes or a uint8 pixel array."""
    import numpy as np
    from PIL import Image

    if isinstance(image, (bytes, np.bytes_)):
        return bytes(image), _picture_from_bytes(bytes(image))
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or min(pixels.shape[:2]) < 1:
        raise DataError(f"image is not a uint8 picture array (dtype {pixels.dtype}, shape {pixels.shape})")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    try:
        picture = Image.fromarray(pixels)
    except (TypeError, ValueError) as error:
        raise DataError(f"image array cannot be a picture ({error})") from None
    return pixels.tobytes(), to_rgb(picture)


# ---------------------------------------------------------------- tf_flowers, cached

def tf_flowers_cache_dir(image_size: int = DEFAULT_IMAGE_SIZE) -> str:
    """Where `tf_flowers_shards` keeps its shards: $FLOWERS_TL_CACHE or ~/.cache/flowers_tl."""
    base = os.environ.get(CACHE_ENV_VARIABLE) or os.path.join("~", ".cache", "flowers_tl")
    return os.path.join(os.path.expanduser(base), f"tf_flowers_{image_size}")


def tf_flowers_shards(image_size: int = DEFAULT_IMAGE_SIZE) -> List[str]:
    """Sorted shards of tf_flowers at `image_size`, converted on first use and cached.

    Used when the course bucket cannot be reached. A finished conversion leaves a
    `conversion.json` next to the shards; without it the cache is made again.
    """
    folder = tf_flowers_cache_dir(image_size)
    shards = sorted(glob.glob(os.path.join(glob.escape(folder), "*.tfrec")))
    if shards and os.path.isfile(os.path.join(folder, _DONE_FILE)):
        return shards
    report = convert_tf_flowers(folder, image_size=image_size, overwrite=True)
    summary = {"images_per_class": report.images_per_class, "shards": len(report.shards),
               "image_size": image_size, "skipped": len(report.skipped)}
    _write_text_atomically(os.path.join(folder, _DONE_FILE), json.dumps(summary, indent=2))
    print(report, file=sys.stderr)  # a note on the way: the caller's result goes to stdout
    return sorted(report.shards)


# ---------------------------------------------------------------- records and shards

def _check_arguments(image_size: int, shards: int) -> None:
    if not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"image size {image_size!r} is too small: use at least {MIN_IMAGE_SIZE} "
                          "pixels (MobileNetV2's minimum; the course uses 192).")
    if not isinstance(shards, int) or shards < 1:
        raise ConfigError(f"shards must be a positive whole number, got {shards!r} (the course uses 16).")


def _check_output(output: str, overwrite: bool) -> None:
    if os.path.exists(output) and not os.path.isdir(output):
        raise DataError(f"output '{output}' is a file; give a folder for the shards.")
    existing = glob.glob(os.path.join(glob.escape(output), "*.tfrec"))
    if existing and not overwrite:
        raise OutputExistsError(f"'{output}' already holds {len(existing)} .tfrec file(s); pass "
                                "--overwrite (overwrite=True) to replace them, or choose another output folder.")


def _picture_from_bytes(raw: bytes):
    """Fully decoded RGB picture from file bytes; DataError (the reason) if it is not one."""
    from PIL import Image, UnidentifiedImageError

    if not raw:
        raise DataError("empty (zero-byte) file")
    try:
        picture = Image.open(io.BytesIO(raw))
        picture.load()  # decode now, so truncated files fail here
        return to_rgb(picture)
    except UnidentifiedImageError:
        raise DataError("not a picture (unknown file format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise DataError(f"truncated or corrupt picture ({error})") from None
    except Image.DecompressionBombError as error:
        raise DataError(f"picture too large ({error})") from None


def _example(raw: bytes, picture, class_index: int, classes: Sequence[str], image_size: int,
             filename: str) -> bytes:
    """One serialized record (`records.encode`), with the photo's filename and source_sha256."""
    jpeg = encode_jpeg(crop_fill(picture, image_size), quality=JPEG_QUALITY)
    return encode_record(jpeg, class_index, classes, size=(image_size, image_size),
                         filename=filename.encode("utf-8"),
                         source_sha256=hashlib.sha256(raw).hexdigest().encode("ascii"))


def _write_shards(output: str, items: list, make_record: Callable, name_of: Callable,
                  classes: List[str], present_classes: Iterable[str], image_size: int,
                  shards: int, overwrite: bool) -> ConversionReport:
    """Write `items` (already shuffled) into up to `shards` shards, all-or-nothing.

    `make_record(item)` returns (serialized example, class name) or raises
    DataError, which skips the item and reports it under `name_of(item)`.
    Every class of `present_classes` must get at least one image.
    """
    import tensorflow as tf

    os.makedirs(output, exist_ok=True)
    groups = _split_evenly(items, min(shards, len(items)))
    counts = {name: 0 for name in classes}
    skipped: List[Tuple[str, str]] = []
    written: List[Tuple[str, int]] = []  # (temporary path, records)
    try:
        for index, group in enumerate(groups):
            partial = os.path.join(output, f".partial-{os.getpid()}-{index}.tfrec.tmp")
            written.append((partial, 0))
            records = 0
            with tf.io.TFRecordWriter(partial) as writer:
                for item in group:
                    try:
                        record, class_name = make_record(item)
                    except DataError as error:
                        skipped.append((name_of(item), str(error)))
                        continue
                    writer.write(record)
                    counts[class_name] += 1
                    records += 1
            written[-1] = (partial, records)
        _check_every_class_written(counts, present_classes, output, skipped)
        final = _publish(output, [w for w in written if w[1]], overwrite)
    finally:
        for partial, _ in written:
            if os.path.exists(partial):
                os.remove(partial)
    return ConversionReport(output=output, image_size=image_size, classes=list(classes),
                            images_per_class=counts, shards=final, skipped=skipped)


def _split_evenly(items: list, parts: int) -> List[list]:
    """`parts` consecutive slices of `items` whose lengths differ by at most one."""
    return [items[index * len(items) // parts:(index + 1) * len(items) // parts]
            for index in range(parts)]


def _check_every_class_written(counts: Dict[str, int], present_classes: Iterable[str],
                               output: str, skipped: List[Tuple[str, str]]) -> None:
    empty = [name for name, count in counts.items() if name in present_classes and not count]
    if empty:
        shown = "; ".join(f"{path}: {reason}" for path, reason in skipped[:3])
        raise DataError(f"no usable picture for class(es) {empty} (nothing was written to "
                        f"'{output}'). Files skipped: {shown or 'none'}.")


def _publish(output: str, written: List[Tuple[str, int]], overwrite: bool) -> List[str]:
    """Rename the complete temporary shards to flowersNN-COUNT.tfrec (after removing old shards)."""
    if overwrite:
        for old in glob.glob(os.path.join(glob.escape(output), "*.tfrec")):
            os.remove(old)
    digits = max(2, len(str(len(written) - 1)))
    final = []
    for index, (partial, records) in enumerate(written):
        path = os.path.join(output, f"flowers{index:0{digits}d}-{records}.tfrec")
        os.replace(partial, path)
        final.append(path)
    return final


def _write_text_atomically(path: str, text: str) -> None:
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.replace(partial, path)


def iter_records(shards: Iterable[str]):
    """Parsed records of `shards` as dicts of numpy values (for checks and tests)."""
    import tensorflow as tf

    for record in tf.data.TFRecordDataset(list(shards)).as_numpy_iterator():
        yield decode_record(record)
