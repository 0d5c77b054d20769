"""Your own photo folder: bringing it to the notebook, and finding a photo's file again.

The last chapter trains on a folder with one sub-folder of photos per class. This module
brings one:
* `photo_folder(folder)`: the folder given, else the one named by `FLOWERS_TL_PHOTOS` (how the
  tests and a teacher's machine give it), else None;
* `unpack_zip(zip_file, folder)`: a zip uploaded on Colab, unpacked safely (nothing outside
  `folder`, no link created, never written through one);
* `course_photos(folder)`: for a learner without photos, three classes of the course's own
  photos written out as JPEG files, one sub-folder per class, as a learner's folder would be.

And back: `validation_files(split, folder)` gives the file of each validation photo, in the
order `ftl.top_losses` numbers them, so a doubtful label can be fixed in the folder itself.
"""

import io
import os
import shutil
import stat
import tempfile
import zipfile
from typing import Dict, List, Optional

from .errors import DataError
from .messages import N_, say

PHOTOS_ENV_VARIABLE = "FLOWERS_TL_PHOTOS"
# A learner without photos gets these three of the course's classes, under the names a learner
# would give their folders (not the course's, so they are a three-class problem of their own).
COURSE_CLASSES = {"daisy": "daisy", "rose": "roses", "tulip": "tulips"}

NOT_A_ZIP = N_("'{path}' is not a zip file ({reason}): zip the photo folder (one sub-folder per class) and upload that.")
OUTSIDE_THE_FOLDER = N_("'{entry}' in '{path}' would be written outside the folder (an absolute path or '..'), so "
                        "nothing was unpacked: make the zip again from the photo folder itself.")
ALREADY_THERE = N_("'{folder}' already exists: unpack into another folder, or use the photos already there "
                   "(PHOTOS = '{folder}').")
UPLOADED_ZIP = N_("the uploaded zip")
NO_PHOTOS_IN_SHARDS = N_("the course's shards hold no photo of '{name}', so no folder of course photos could be made.")


def photo_folder(folder: str = "") -> Optional[str]:
    """`folder` when given, else $FLOWERS_TL_PHOTOS when set, else None (the learner has none yet)."""
    return folder or os.environ.get(PHOTOS_ENV_VARIABLE) or None


def unpack_zip(zip_file, folder: str) -> str:
    """Unpack the zip of a photo folder into the new folder `folder`; the folder holding the classes.

    `zip_file`: its path, or its bytes (as Colab's `files.upload()` gives them). A zip made from
    `my_photos/` holds `my_photos/daisy/...`: the one top folder is then the one returned. Entries
    that are links or not plain files are left out; an entry whose path leaves `folder` stops
    everything before anything is written (DataError naming it).
    """
    name = say(UPLOADED_ZIP) if isinstance(zip_file, bytes) else zip_file
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_file) if isinstance(zip_file, bytes) else zip_file)
    except (OSError, zipfile.BadZipFile) as error:
        raise DataError(say(NOT_A_ZIP, path=name, reason=error)) from None
    if os.path.lexists(folder):
        raise DataError(say(ALREADY_THERE, folder=folder))
    with archive:
        entries = [entry for entry in archive.infolist() if _is_plain_file(entry)]
        for entry in entries:
            parts = entry.filename.replace("\\", "/").split("/")
            if entry.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
                raise DataError(say(OUTSIDE_THE_FOLDER, entry=entry.filename, path=name))
        os.makedirs(folder)
        for entry in entries:
            _write_new_file(os.path.join(folder, *entry.filename.replace("\\", "/").split("/")),
                            archive.read(entry))
    return _classes_folder(folder)


def _is_plain_file(entry: zipfile.ZipInfo) -> bool:
    """A zip entry that is a regular file (not a folder, a link or a device), outside macOS' __MACOSX."""
    kind = stat.S_IFMT(entry.external_attr >> 16)
    return not entry.is_dir() and kind in (0, stat.S_IFREG) and not entry.filename.startswith("__MACOSX/")


def _write_new_file(path: str, contents: bytes) -> None:
    """Write `contents` into the new file `path` (its folders made): never over a file or through a link."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(contents)


def _classes_folder(folder: str) -> str:
    """`folder`, or its one sub-folder when everything was zipped inside a single folder."""
    entries = [entry for entry in os.listdir(folder) if not entry.startswith(".")]
    if len(entries) == 1 and os.path.isdir(os.path.join(folder, entries[0])):
        inner = os.path.join(folder, entries[0])
        if any(os.path.isdir(os.path.join(inner, entry)) for entry in os.listdir(inner)):
            return inner
    return folder


def course_photos(folder: str, per_class: int, classes: Optional[Dict[str, str]] = None,
                  pattern: Optional[str] = None) -> str:
    """A photo folder made of the course's photos: `per_class` JPEG files for each of `classes`
    ({folder name: course class}, default COURSE_CLASSES), taken in shard order from the course's
    shards (`pattern`, default the course's data). A folder that exists is used as it is; a new
    one appears whole or not at all (written aside, then renamed)."""
    from . import records, sources

    if os.path.lexists(folder):
        return folder
    classes = classes or COURSE_CLASSES
    wanted = {records.CLASSES.index(course): name for name, course in classes.items()}
    written = {name: 0 for name in classes}
    parent = os.path.dirname(os.path.abspath(folder))
    partial = tempfile.mkdtemp(prefix=".partial-photos-", dir=parent)
    try:
        for name in classes:
            os.mkdir(os.path.join(partial, name))
        for shard, record in _course_records(sources.find_shards(pattern)):
            name = wanted.get(int(record["class"]))
            if name is None or written[name] >= per_class:
                continue
            stem = os.path.splitext(os.path.basename(shard))[0]
            _write_new_file(os.path.join(partial, name, f"{stem}-{written[name]:04d}.jpg"), record["image"])
            written[name] += 1
            if min(written.values()) >= per_class:
                break
        missing = [name for name, count in written.items() if not count]
        if missing:
            raise DataError(say(NO_PHOTOS_IN_SHARDS, name=missing[0]))
        os.rename(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _course_records(shards):
    """(shard, record with 'image' and 'class') of every record of `shards`, shard after shard."""
    import tensorflow as tf

    from .records import decode

    for shard in shards:
        for serialized in tf.data.TFRecordDataset(shard).as_numpy_iterator():
            yield shard, decode(serialized, ("image", "class"))


def validation_files(split, folder: str) -> List[str]:
    """The file in `folder` of each validation photo of `split`, in the order `ftl.top_losses` and
    `ftl.get_validation_dataset` number them: photo #N is `validation_files(split, folder)[N]`.
    Shards made by `convert_folder(folder, ...)` name each photo's path inside `folder`."""
    from .data import file_names

    return [os.path.join(folder, *name.split("/")) if name else "" for name in file_names(split.validation_shards)]
