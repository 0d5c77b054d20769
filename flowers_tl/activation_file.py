"""Where the fast path keeps its activations: in memory, or in a file on disk when they would not fit.

At 224 px one photo's activations after MobileNetV2 take 125 KB (7x7x1280 float16): 100,000
photos need 12.5 GB. `memory.place_for(size, images)` is the one rule that chooses memory or disk;
`frozen` imports this module only when it chose disk.

On disk the activations are two .npy files, training and validation (numpy's format:
`np.load(path, mmap_mode="r")` reads them), in a private folder (mode 0700) under the system's
temporary folder ($TMPDIR) or a folder the caller names (`ActivationFolder`). They are written
batch by batch during the pass over the photos and read batch by batch while training, with
plain reads and writes rather than a memory map: a mapped file counts towards `ulimit -v` and
the process's resident memory, so a 12 GB map would be refused where the disk is needed most.
`ActivationFolder.remove()` deletes the folder, and so does the end of the process (a process
killed with SIGKILL leaves it behind, in the temporary folder).
"""

import copy
import os
import shutil
import sys
import tempfile
import weakref
from typing import Optional, Tuple

import numpy as np

from .errors import ConfigError
from .reading import reason_of
from .memory import available_memory
from .messages import N_, say

FOLDER_PREFIX = "flowers_tl_activations-"
DTYPE = np.float16

NO_ROOM_ON_DISK = N_("the activations of {images} photos take {size:.1f} GB, more than the memory left can hold, "
                     "and '{folder}' has only {free:.1f} GB free: free some disk space, set TMPDIR to a folder on a "
                     "larger disk, or use a smaller image size.")
FOLDER_IS_A_LINK = N_("'{folder}' is a symbolic link: the activations are not written through it. "
                      "Give the folder's real path.")
CANNOT_WRITE_ACTIVATIONS = N_("cannot write the activations into '{folder}': {reason}.")
HEADER_CHANGED = N_("the header of '{path}' changed length")
FILE_ENDED = N_("'{path}' ended after {got} of {wanted} bytes")
ONLY_FIRST_ROWS = N_("an ActivationFile gives only its first rows: activations[:count]")
ON_DISK = N_("Note: the activations of {images} photos ({size:.2f} GB) are kept on disk in '{folder}', "
             "not in memory ({free:.2f} GB left); the file is removed at exit.")


class ActivationFolder:
    """A new folder only this user can open (mode 0700) for the activation files of one cache.

    Made in `parent` (default: the system's temporary folder, $TMPDIR) once it has room for
    `size` bytes; `remove()` deletes it with its files, and so does the end of the process.
    """

    def __init__(self, size: int, images: int, parent: Optional[str] = None) -> None:
        self.path = _private_folder(parent, size, images)
        self._remover = weakref.finalize(self, shutil.rmtree, self.path, True)

    def new_file(self, name: str, row_shape: Tuple[int, ...], capacity: int) -> "ActivationFile":
        """An empty activation file in this folder with room for `capacity` rows."""
        return ActivationFile(os.path.join(self.path, name), row_shape, capacity, self)

    def remove(self) -> None:
        """Delete the folder and its files."""
        self._remover()


class ActivationFile:
    """Activations of a count of photos, one row per photo, in a new .npy file.

    `write(batch)` appends rows during the pass over the photos, `finish()` records how many
    were written, `read(start, stop)` gives rows back as a float16 array and `batches()` as a
    tf.data pipeline for training. `activations[:count]` limits the rows training sees, in the
    same file.
    """

    def __init__(self, path: str, row_shape: Tuple[int, ...], capacity: int, folder: ActivationFolder) -> None:
        self.path, self.folder = path, folder  # the folder lives as long as its files
        self.row_shape = tuple(int(side) for side in row_shape)
        self.row_bytes = int(np.prod(self.row_shape)) * np.dtype(DTYPE).itemsize
        self.rows = 0
        self._descriptor = _create_file(path)
        self._closer = weakref.finalize(self, os.close, self._descriptor)
        self._data_offset = self._write_header(capacity)
        os.ftruncate(self._descriptor, self._data_offset + capacity * self.row_bytes)  # sparse until written

    @property
    def ndim(self) -> int:
        """The rank of the whole array, photos first (4 for maps with a height and a width)."""
        return 1 + len(self.row_shape)

    def __len__(self) -> int:
        return self.rows

    @property
    def nbytes(self) -> int:
        return self.rows * self.row_bytes

    def write(self, batch: np.ndarray) -> None:
        """Append `batch` (photos first, `row_shape` after) as float16 rows."""
        data = np.ascontiguousarray(batch, dtype=DTYPE)
        _write_all(self._descriptor, data.tobytes(), self._data_offset + self.rows * self.row_bytes)
        self.rows += len(data)

    def finish(self) -> None:
        """Make the file's header say how many rows were written, and free the unwritten rest."""
        if self._write_header(self.rows) != self._data_offset:  # numpy leaves room for a longer shape
            raise ValueError(say(HEADER_CHANGED, path=self.path))
        os.ftruncate(self._descriptor, self._data_offset + self.nbytes)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows `start` to `stop` (at most `rows`) as a new float16 array."""
        start, stop = int(start), min(int(stop), self.rows)
        batch = np.empty((stop - start, *self.row_shape), DTYPE)
        wanted = batch.nbytes
        got = os.preadv(self._descriptor, [memoryview(batch).cast("B")], self._data_offset + start * self.row_bytes)
        if got != wanted:
            raise OSError(say(FILE_ENDED, path=self.path, got=got, wanted=wanted))
        return batch

    def batches(self, labels: np.ndarray, batch_size: int, shuffle: bool = False):
        """A tf.data.Dataset of (float16 activations, labels) batches of the first `len(labels)` rows.

        Each batch is `batch_size` neighbouring rows, read when training needs it; `shuffle`
        mixes the order of the batches anew each epoch (the photos were already mixed in the shards).
        """
        import tensorflow as tf

        rows = len(labels)
        classes = tf.constant(labels)
        starts = tf.data.Dataset.range(0, rows, batch_size)
        if shuffle:
            starts = starts.shuffle(-(-rows // batch_size), reshuffle_each_iteration=True)

        def read(start):
            batch = tf.numpy_function(lambda first: self.read(first, min(first + batch_size, rows)),
                                      [start], tf.float16, stateful=False)
            batch.set_shape([None, *self.row_shape])
            return batch, classes[start:tf.minimum(start + batch_size, rows)]

        return starts.map(read, num_parallel_calls=tf.data.AUTOTUNE)

    def __getitem__(self, rows: slice) -> "ActivationFile":
        """`activations[:count]`, as for an array: the first `count` rows, in the same file."""
        if not isinstance(rows, slice) or rows.start or rows.step not in (None, 1):
            raise TypeError(say(ONLY_FIRST_ROWS))
        kept = copy.copy(self)
        kept.rows = len(range(self.rows)[rows])
        kept._whole = self  # the file stays open while a part of it is used
        return kept

    def _write_header(self, rows: int) -> int:
        """Write numpy's .npy header for `rows` rows at the start of the file; where the data starts."""
        with open(self._descriptor, "r+b", buffering=0, closefd=False) as handle:
            handle.seek(0)
            np.lib.format.write_array_header_1_0(handle, {
                "descr": np.lib.format.dtype_to_descr(np.dtype(DTYPE)), "fortran_order": False,
                "shape": (rows, *self.row_shape)})
            return handle.tell()


def tell_on_disk(folder: ActivationFolder, size: int, images: int) -> None:
    """One line on stderr: the activations go to disk, where, and how big they are."""
    free = available_memory() or 0
    print(say(ON_DISK, images=images, size=size / 1e9, folder=folder.path, free=free / 1e9), file=sys.stderr)


def _private_folder(folder: Optional[str], size: int, images: int) -> str:
    """A new folder only this user can open (0700), in `folder` or the system's temporary folder,
    once there is room for `size` bytes."""
    parent = folder if folder is not None else tempfile.gettempdir()
    if os.path.islink(parent):
        raise ConfigError(say(FOLDER_IS_A_LINK, folder=parent))
    try:
        free = shutil.disk_usage(parent).free
        if size > free:
            raise ConfigError(say(NO_ROOM_ON_DISK, images=images, size=size / 1e9, folder=parent, free=free / 1e9))
        return tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=parent)  # mode 0700, a new name
    except OSError as error:
        raise ConfigError(say(CANNOT_WRITE_ACTIVATIONS, folder=parent, reason=reason_of(error))) from None


def _create_file(path: str) -> int:
    """A new file at `path`, readable by its owner only; never through a link or over a file."""
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)


def _write_all(descriptor: int, data: bytes, offset: int) -> None:
    """Write all of `data` at `offset` (a write may take only part of it)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(descriptor, view, offset)
        view, offset = view[written:], offset + written
