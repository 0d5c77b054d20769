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

Pictures are read and decoded by `pictures` (upright by their EXIF orientation,
16-bit and float pictures mapped to 8 bits, FIFOs, devices and decompression
bombs refused by name); the report notes tiny pictures and identical photos.

Nothing is half-written: shards are written under temporary names and renamed
only when every shard is complete, so an interrupted run leaves the output
folder as it was (Ctrl-C and SIGTERM remove the temporary files and say how far
the run got; what a killed run left, the next run removes). A run claims the
output folder first (`files.OutputClaim`), so a second run into it is refused. An output folder that already holds `.tfrec` files is only
replaced with `overwrite=True`. A class folder without any picture file is an
error (its class could never be learned, and skipping it would shift every
later class number).
"""

import dataclasses
import glob
import hashlib
import json
import os
import random
import sys
import unicodedata
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from .. import online, rules
from ..errors import DataError, OfflineWithoutData, OutputExistsError, first_line
from .files import (OutputClaim, check_output_folder, interrupt_on_signals, make_output_folder, publish,
                    remove_stale_partials, write_text_atomically)
from ..messages import N_, N_plural, say, say_n
from ..pictures import (NOT_SUPPORTED, crop_fill, decode_picture, encode_jpeg, far_from_square_note, is_picture_name,
                       read_picture_bytes, small_picture_note, to_rgb, unsupported_kind)
from ..quiet import absl_warnings_off
from ..reading import FileProblem, reason_of, regular_file_problem
from ..records import CLASSES, DEFAULT_IMAGE_SIZE, encode as encode_record

DEFAULT_SHARDS = 16
DEFAULT_SEED = 42
PARTIAL_SUFFIX = ".tfrec.tmp"
JPEG_QUALITY = 90
CACHE_ENV_VARIABLE = "FLOWERS_TL_CACHE"
LOCAL_COPY_REMEDY = N_("set FLOWERS_TL_DATA to a pattern of local shards (e.g. '/data/flowers/*.tfrec'; "
                       "`flowers-tl download`, run once on a machine that is online, makes a copy), or make shards "
                       "from a photo folder with `flowers-tl convert --folder`.")
TF_FLOWERS_OFFLINE = N_("could not load tensorflow-datasets' tf_flowers: you are offline (no answer from "
                        "storage.googleapis.com) and it was never downloaded. Online, it is downloaded once "
                        "(about 220 MB); offline, {remedy}")
TF_FLOWERS_FAILED = N_("could not load tensorflow-datasets' tf_flowers: {kind}: {problem}. Remedies: {remedy}")
NOT_A_PHOTO_FOLDER = N_("photo folder '{folder}' {what}. Give a folder with one sub-folder of photos per class, "
                        "e.g. photos/daisy/*.jpg, photos/roses/*.jpg.")
IS_A_FILE = N_("is a file, not a folder")
BROKEN_LINK = N_("is a symbolic link to nothing, or one that loops")
DOES_NOT_EXIST = N_("does not exist")
OUTSIDE_CLASS_FOLDERS = N_("not inside a class folder")
NOT_A_PICTURE_NAME = N_("not a picture file name (use .jpg, .png...)")
TOO_FEW_CLASS_FOLDERS = N_plural("photo folder '{folder}' has {count} class sub-folder; it needs at least 2, one per "
                                 "class (e.g. photos/daisy/, photos/roses/).",
                                 "photo folder '{folder}' has {count} class sub-folders; it needs at least 2, one "
                                 "per class (e.g. photos/daisy/, photos/roses/).")
EMPTY_CLASS_FOLDER = N_("class folder '{folder}' has no picture file. Add photos of that class, or remove the folder.")
NO_USABLE_PICTURE = N_("{source} has no usable picture; nothing was written to '{output}'.")
NOT_A_PIXEL_ARRAY = N_("image is not a uint8 picture array (dtype {dtype}, shape {shape})")
NOT_A_PICTURE_ARRAY = N_("image array cannot be a picture ({problem})")
SHARDS_EXIST = N_plural("'{output}' already holds {count} .tfrec file; pass --overwrite (overwrite=True) to replace "
                        "it, or choose another output folder.",
                        "'{output}' already holds {count} .tfrec files; pass --overwrite (overwrite=True) to replace "
                        "them, or choose another output folder.")
CLASSES_WITHOUT_PICTURE = N_plural("no usable picture for class {classes} (nothing was written to '{output}'). Files "
                                   "skipped: {skipped}.",
                                   "no usable picture for classes {classes} (nothing was written to '{output}'). "
                                   "Files skipped: {skipped}.")
NO_FILE_SKIPPED = N_("none")
WROTE = N_plural("Wrote {images} images of {size}x{size} in {shards} shard to {output} ({shown})",
                 "Wrote {images} images of {size}x{size} in {shards} shards to {output} ({shown})")
CLASS_COUNT = N_plural("  {index} {name:<12} {images:>6} image", "  {index} {name:<12} {images:>6} images")
NO_PHOTOS_OF = N_("  Note: no photos of {missing}; the model will never predict them.")
OTHER_CLASSES = N_("  Note: these {count} classes are not the course's {classes}; build the model with "
                   "num_classes={count}.")
SKIPPED_FILES = N_plural("Skipped {count} file:", "Skipped {count} files:")
_DONE_FILE = "conversion.json"
# Unicode categories of characters a class name must not hold: control (newline, tab, escape),
# format (zero-width, right-to-left override) and line or paragraph separators.
_INVISIBLE_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")

FOLDER_LINK = N_("a symbolic link to a folder: not followed (copy or move the photos into the class folder)")
DUPLICATE = N_("Note: '{second}' is the same photo as '{first}' ({how}); both were converted. Remove one "
               "if it was copied by mistake: a photo in both the training and validation shards makes the "
               "validation accuracy look better than it is.")
MORE_DUPLICATES = N_plural("Note: {count} more pair of identical photos.",
                           "Note: {count} more pairs of identical photos.")
SAME_BYTES = N_("same file contents")
SAME_PIXELS = N_("same pixels")
STALE_PARTIALS = N_plural("Note: removed {count} temporary file left in '{output}' by an interrupted conversion.",
                          "Note: removed {count} temporary files left in '{output}' by an interrupted conversion.")
SHARDS_NOT_WRITTEN = N_("cannot write the shards into '{output}': {reason}. Nothing was written there (its "
                        "temporary files were removed); free some space or choose another output folder.")
INTERRUPTED = N_("stopped after {done} of {total} photos; nothing was written to '{output}' (its temporary "
                 "files were removed). Run the same command again to convert everything.")
FEWER_SHARDS = N_plural("Note: wrote {written} shard, not the {asked} asked for: every shard holds at least one "
                        "photo, and there is only {photos}.",
                        "Note: wrote {written} shards, not the {asked} asked for: every shard holds at least one "
                        "photo, and there are only {photos}.")
INVISIBLE_CHARACTER = N_("class folder {name} in '{folder}' has a control or invisible character in its name "
                         "({character}), which would make a class name that prints wrongly or looks like another: "
                         "rename the folder.")
LOOK_ALIKE_CLASSES = N_("class folders {first} and {second} in '{folder}' differ only in Unicode normalisation, "
                        "spaces at the ends or upper and lower case, so they would become two classes that look "
                        "alike: put their photos in one folder, or rename one.")


@dataclasses.dataclass
class ConversionReport:
    """What a conversion wrote: images per class, the shard files, and the files it skipped."""

    output: str
    image_size: int
    classes: List[str]
    images_per_class: Dict[str, int]
    shards: List[str]
    skipped: List[Tuple[str, str]] = dataclasses.field(default_factory=list)  # (file, reason)
    notes: List[str] = dataclasses.field(default_factory=list)  # tiny pictures, duplicates, bit depths...

    @property
    def images(self) -> int:
        """Number of images written, all classes together."""
        return sum(self.images_per_class.values())

    def __str__(self) -> str:
        names = [os.path.basename(s) for s in self.shards]
        shown = names[0] if len(names) == 1 else f"{names[0]} ... {names[-1]}"
        lines = [say_n(*WROTE, len(self.shards), images=self.images, size=self.image_size, shards=len(self.shards),
                       output=self.output, shown=shown)]
        lines += [say_n(*CLASS_COUNT, self.images_per_class[name], index=index, name=name,
                        images=self.images_per_class[name]) for index, name in enumerate(self.classes)]
        missing = [name for name in self.classes if not self.images_per_class[name]]
        if missing:
            lines.append(say(NO_PHOTOS_OF, missing=missing))
        if self.classes != CLASSES:
            lines.append(say(OTHER_CLASSES, count=len(self.classes), classes=CLASSES))
        lines += [f"  {note}" for note in self.notes]
        if self.skipped:
            lines.append(say_n(*SKIPPED_FILES, len(self.skipped), count=len(self.skipped)))
            lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


# ---------------------------------------------------------------- from a folder

def convert_folder(folder: str, output: str, image_size: int = DEFAULT_IMAGE_SIZE,
                   shards: int = DEFAULT_SHARDS, seed: int = DEFAULT_SEED,
                   overwrite: bool = False,
                   progress: Optional[Callable[[int, int], None]] = None) -> ConversionReport:
    """Convert `folder/<class name>/**/<photo>` into shards in `output`.

    Raises DataError for a missing folder, no class sub-folder or an empty class
    folder; OutputExistsError when `output` already has shards and not `overwrite`,
    or while another conversion writes there. `progress(done, total)` is called
    after each photo. The report's notes name tiny pictures, pictures of more than
    8 bits mapped to 8, and identical photos.
    """
    _check_arguments(image_size, shards)
    classes, photos, skipped = list_class_photos(folder)
    _check_output(output, overwrite)
    random.Random(seed).shuffle(photos)
    notes: List[str] = []
    twins = _TwinFinder()

    def make_record(item):
        path, class_index = item
        raw = read_picture_bytes(path)
        picture = decode_picture(raw, path, notes.append)
        notes.extend(filter(None, [far_from_square_note(path, picture), small_picture_note(path, picture, image_size)]))
        twins.add(path, raw, picture)
        relative = file_name_text(os.path.relpath(path, folder))
        return _example(raw, picture, class_index, classes, image_size,
                        filename=relative.replace(os.sep, "/")), classes[class_index]

    present = {classes[class_index] for _, class_index in photos}
    report = _write_shards(output, photos, make_record, lambda item: item[0], classes, present,
                           image_size, shards, overwrite, progress=progress)
    report.skipped = skipped + report.skipped
    report.notes += sorted(notes) + twins.notes()
    return report


class _TwinFinder:
    """Finds photos that are the same file contents, or the same pixels, under two names."""

    def __init__(self):
        self.first: Dict[Tuple[str, str], str] = {}  # (kind, hash) -> first path
        self.pairs: List[Tuple[str, str, str]] = []  # (first, second, how)

    def add(self, path: str, raw: bytes, picture) -> None:
        """Remember one photo; pair it with an earlier one of the same bytes, else the same pixels."""
        pixels = picture.tobytes() + repr(picture.size).encode()
        for kind, digest in ((SAME_BYTES, hashlib.sha256(raw).hexdigest()),
                             (SAME_PIXELS, hashlib.sha256(pixels).hexdigest())):
            earlier = self.first.setdefault((kind, digest), path)
            if earlier != path:
                self.pairs.append((*sorted((earlier, path)), kind))
                return

    def notes(self, shown: int = 10) -> List[str]:
        """One note per pair of identical photos, in name order: the first `shown`, then how many more."""
        pairs = sorted(self.pairs)
        notes = [say(DUPLICATE, first=first, second=second, how=say(how)) for first, second, how in pairs[:shown]]
        more = len(pairs) - shown
        return notes + ([say_n(*MORE_DUPLICATES, more, count=more)] if more > 0 else [])


def list_class_photos(folder: str) -> Tuple[List[str], List[Tuple[str, int]], List[Tuple[str, str]]]:
    """Class names, (picture path, class index) pairs, and (file, reason) for files left out.

    Class names are the sorted sub-folder names, or the course's `CLASSES` when
    every sub-folder is named after a course flower. Hidden files and folders
    (names starting with '.') are ignored.
    """
    if not os.path.isdir(folder):
        what = IS_A_FILE if os.path.exists(folder) else BROKEN_LINK if os.path.islink(folder) else DOES_NOT_EXIST
        raise DataError(say(NOT_A_PHOTO_FOLDER, folder=folder, what=say(what)))
    entries = sorted((e for e in os.listdir(folder) if not e.startswith(".")), key=file_name_text)
    folders = [e for e in entries if os.path.isdir(os.path.join(folder, e))]
    skipped = [(os.path.join(folder, e), say(OUTSIDE_CLASS_FOLDERS)) for e in entries if e not in folders]
    if len(folders) < 2:
        raise DataError(say_n(*TOO_FEW_CLASS_FOLDERS, len(folders), folder=folder, count=len(folders)))
    names = [file_name_text(name) for name in folders]
    _check_class_names(names, folder)
    # Course flower names keep the course's numbering, even when only some are present.
    classes = list(CLASSES) if set(names) <= set(CLASSES) else names
    photos: List[Tuple[str, int]] = []
    for name, text in zip(folders, names):
        class_index, found = classes.index(text), 0
        files, links = _files_below(os.path.join(folder, name))
        skipped += [(link, say(FOLDER_LINK)) for link in links]
        for path in files:
            problem = regular_file_problem(path)
            if problem:  # a FIFO, a device, a broken or looping link: never opened
                skipped.append((path, problem))
            elif is_picture_name(path):
                photos.append((path, class_index))
                found += 1
            elif unsupported_kind(path):
                skipped.append((path, say(NOT_SUPPORTED, kind=unsupported_kind(path))))
            else:
                skipped.append((path, say(NOT_A_PICTURE_NAME)))
        if not found:
            raise DataError(say(EMPTY_CLASS_FOLDER, folder=os.path.join(folder, name)))
    return classes, photos, skipped


def file_name_text(name: str) -> str:
    """A name read from the file system, as the text its UTF-8 bytes spell.

    Under an ASCII locale (LC_ALL=C) Python reads the bytes of 'ромашка' as escaped surrogates,
    which cannot be written into a record or printed; they are decoded as UTF-8 here, and bytes
    that are not UTF-8 stay visible as \\xNN.
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _check_class_names(names: Sequence[str], folder: str) -> None:
    """DataError naming a class folder whose name holds a control or invisible character, or two
    whose names are equal after Unicode NFC normalisation, `strip()` and case-folding: each would
    give class names that print wrongly or alike (NFC and NFD 'été' are two classes otherwise)."""
    seen: Dict[str, str] = {}
    for name in names:
        hidden = [character for character in name if unicodedata.category(character) in _INVISIBLE_CATEGORIES]
        if hidden:
            raise DataError(say(INVISIBLE_CHARACTER, name=repr(name), folder=folder,
                                character=", ".join(f"U+{ord(c):04X}" for c in hidden)))
        key = unicodedata.normalize("NFC", name).strip().casefold()
        if key in seen:
            raise DataError(say(LOOK_ALIKE_CLASSES, first=ascii(seen[key]), second=ascii(name), folder=folder))
        seen[key] = name


def _files_below(folder: str) -> Tuple[List[str], List[str]]:
    """Every non-hidden file under `folder`, nested folders included, in a fixed order; and the
    symbolic links to folders, which are not followed (a link back up would loop forever)."""
    found, links = [], []
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        links += [os.path.join(root, f) for f in folders if os.path.islink(os.path.join(root, f))]
        found += [os.path.join(root, f) for f in sorted(files) if not f.startswith(".")]
    return found, links


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
            raise OfflineWithoutData(say(TF_FLOWERS_OFFLINE, remedy=say(LOCAL_COPY_REMEDY)))
        dataset, info = tfds.load("tf_flowers", split="train", with_info=True, data_dir=data_dir,
                                  decoders={"image": tfds.decode.SkipDecoding()})
    except DataError:
        raise
    except Exception as error:  # missing package, broken download: one clear message
        raise DataError(say(TF_FLOWERS_FAILED, kind=type(error).__name__, problem=first_line(error, 200),
                            remedy=say(LOCAL_COPY_REMEDY))) from None
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
        raise DataError(say(NO_USABLE_PICTURE, source=source, output=output))
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
        try:
            return bytes(image), decode_picture(bytes(image), "image")
        except FileProblem as problem:
            raise DataError(problem.reason) from None
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or min(pixels.shape[:2]) < 1:
        raise DataError(say(NOT_A_PIXEL_ARRAY, dtype=pixels.dtype, shape=pixels.shape))
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    try:
        picture = Image.fromarray(pixels)
    except (TypeError, ValueError) as error:
        raise DataError(say(NOT_A_PICTURE_ARRAY, problem=error)) from None
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
    write_text_atomically(os.path.join(folder, _DONE_FILE), json.dumps(summary, indent=2))
    print(report, file=sys.stderr)  # a note on the way: the caller's result goes to stdout
    return sorted(report.shards)


# ---------------------------------------------------------------- records and shards

def _check_arguments(image_size: int, shards: int) -> None:
    """ConfigError naming the first bad argument, before anything is read or written."""
    rules.image_size(rules.whole_number(image_size, "image_size"))  # one side: the pictures are square
    rules.at_least(shards, "shards")


def _check_output(output: str, overwrite: bool) -> None:
    """Refuse, before anything is read or written, an output that cannot be a folder or already holds shards."""
    check_output_folder(output)
    existing = glob.glob(os.path.join(glob.escape(output), "*.tfrec"))
    if existing and not overwrite:
        raise OutputExistsError(say_n(*SHARDS_EXIST, len(existing), output=output, count=len(existing)))


def _example(raw: bytes, picture, class_index: int, classes: Sequence[str], image_size: int,
             filename: str) -> bytes:
    """One serialized record (`records.encode`), with the photo's filename and source_sha256."""
    jpeg = encode_jpeg(crop_fill(picture, image_size), quality=JPEG_QUALITY)
    return encode_record(jpeg, class_index, classes, size=(image_size, image_size),
                         filename=filename.encode("utf-8"),
                         source_sha256=hashlib.sha256(raw).hexdigest().encode("ascii"))


def _write_shards(output: str, items: list, make_record: Callable, name_of: Callable,
                  classes: List[str], present_classes: Iterable[str], image_size: int,
                  shards: int, overwrite: bool,
                  progress: Optional[Callable[[int, int], None]] = None) -> ConversionReport:
    """Write `items` (already shuffled) into up to `shards` shards, all-or-nothing.

    `make_record(item)` returns (serialized example, class name) or raises
    DataError, which skips the item and reports it under `name_of(item)`.
    Every class of `present_classes` must get at least one image. The output is
    claimed first (`files.OutputClaim`), so a second conversion into it is refused;
    SIGTERM and Ctrl-C end the run with ConversionInterrupted saying how far it got,
    and no temporary file is left behind (nor by a killed run, after the next one).
    """
    make_output_folder(output)
    with OutputClaim(output):
        _check_output(output, overwrite)  # again, now that no other run can write here
        stale = remove_stale_partials(output, PARTIAL_SUFFIX)
        notes = [say_n(*STALE_PARTIALS, len(stale), count=len(stale), output=output)] if stale else []
        counts = {name: 0 for name in classes}
        skipped: List[Tuple[str, str]] = []
        written: List[Tuple[str, int]] = []  # (temporary path, records)
        try:
            with interrupt_on_signals():
                for index, group in enumerate(_split_evenly(items, min(shards, len(items)))):
                    partial = os.path.join(output, f".partial-{os.getpid()}-{index}{PARTIAL_SUFFIX}")
                    written.append((partial, 0))
                    records = _write_shard(partial, group, make_record, name_of, counts, skipped,
                                           lambda done: progress and progress(done, len(items)))
                    written[-1] = (partial, records)
            _check_every_class_written(counts, present_classes, output, skipped)
            final = _publish(output, [w for w in written if w[1]], overwrite)
            if len(final) < shards:
                notes.append(say_n(*FEWER_SHARDS, len(final), written=len(final), asked=shards,
                                   photos=sum(counts.values())))
        except KeyboardInterrupt:
            done = sum(counts.values()) + len(skipped)
            raise ConversionInterrupted(say(INTERRUPTED, done=done, total=len(items), output=output)) from None
        except OSError as error:  # a full disk, a folder made read-only meanwhile
            raise DataError(say(SHARDS_NOT_WRITTEN, output=output, reason=reason_of(error))) from None
        finally:
            for partial, _ in written:
                if os.path.exists(partial):
                    os.remove(partial)
    return ConversionReport(output=output, image_size=image_size, classes=list(classes),
                            images_per_class=counts, shards=final, skipped=skipped, notes=notes)


def _write_shard(partial: str, group: list, make_record: Callable, name_of: Callable,
                 counts: Dict[str, int], skipped: List[Tuple[str, str]], progress: Callable) -> int:
    """Write one group's records into the temporary shard `partial`; the number written.

    Counts each class in `counts`, adds unusable items to `skipped`, calls
    `progress(photos done so far)` after each item.
    """
    import tensorflow as tf

    records = 0
    try:
        with tf.io.TFRecordWriter(partial) as writer:
            for item in group:
                try:
                    record, class_name = make_record(item)
                except DataError as error:
                    skipped.append((name_of(item), error.reason if isinstance(error, FileProblem) else str(error)))
                else:
                    writer.write(record)
                    counts[class_name] += 1
                    records += 1
                progress(sum(counts.values()) + len(skipped))
    except tf.errors.OpError as error:  # TensorFlow's own file errors (no space, no permission)
        raise OSError(first_line(error).replace(f"{partial}; ", "")) from None  # TF puts the file name first
    return records


class ConversionInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a conversion; the message says how far it got."""


def _split_evenly(items: list, parts: int) -> List[list]:
    """`parts` consecutive slices of `items` whose lengths differ by at most one."""
    return [items[index * len(items) // parts:(index + 1) * len(items) // parts]
            for index in range(parts)]


def _check_every_class_written(counts: Dict[str, int], present_classes: Iterable[str],
                               output: str, skipped: List[Tuple[str, str]]) -> None:
    """DataError (nothing written) when a class that had photos got no usable one."""
    empty = [name for name, count in counts.items() if name in present_classes and not count]
    if empty:
        shown = "; ".join(f"{path}: {reason}" for path, reason in skipped[:3])
        raise DataError(say_n(*CLASSES_WITHOUT_PICTURE, len(empty), classes=empty, output=output,
                              skipped=shown or say(NO_FILE_SKIPPED)))


def _publish(output: str, written: List[Tuple[str, int]], overwrite: bool) -> List[str]:
    """Rename the complete temporary shards to flowersNN-COUNT.tfrec (after removing old shards)."""
    if overwrite:
        for old in glob.glob(os.path.join(glob.escape(output), "*.tfrec")):
            os.remove(old)
    digits = max(2, len(str(len(written) - 1)))
    final = []
    for index, (partial, records) in enumerate(written):
        path = os.path.join(output, f"flowers{index:0{digits}d}-{records}.tfrec")
        publish(partial, path)
        final.append(path)
    return final
