"""Files read only when they are safe to read: a user's pictures, shards and models are untrusted.

`read_regular_file(path, limit)` gives the bytes of a file, refused by name (`FileProblem`, a
`DataError`) when it is a FIFO, a device such as /dev/zero, a socket, a symbolic-link loop, or
larger than `limit`, so that reading never blocks and never fills the memory. `pictures` reads a
learner's photo through it; the command line's wing (`tool.files`) writes files the same careful way.
"""

import errno
import os
import stat
from typing import Optional

from .errors import DataError
from .messages import N_, say

FILE_PROBLEM = N_("'{path}': {reason}")
NOT_REGULAR = N_("{kind}, not a regular file; it was not read")
TOO_LARGE = N_("{size:.0f} MB, more than the {limit:.0f} MB allowed; it was not read")
CANNOT_READ = N_("cannot be read: {reason}")

LOOPS = N_("a symbolic link that loops back on itself")
FIFO = N_("a FIFO (named pipe)")
CHARACTER_DEVICE = N_("a character device")
BLOCK_DEVICE = N_("a block device")
SOCKET = N_("a socket")
FOLDER = N_("a folder")
OTHER_KIND = N_("something else")
_KINDS = {stat.S_IFIFO: FIFO, stat.S_IFCHR: CHARACTER_DEVICE, stat.S_IFBLK: BLOCK_DEVICE,
          stat.S_IFSOCK: SOCKET, stat.S_IFDIR: FOLDER}


class FileProblem(DataError):
    """A file that cannot be used; `path` names it and `reason` says why (the message holds both)."""

    def __init__(self, path: str, reason: str):
        super().__init__(say(FILE_PROBLEM, path=path, reason=reason))
        self.path = path
        self.reason = reason


def reason_of(error: OSError) -> str:
    """The short reason of an OSError ("No space left on device"), for messages."""
    if error.errno == errno.ELOOP:
        return say(LOOPS)
    return error.strerror or str(error)


def regular_file_problem(path: str) -> Optional[str]:
    """Why `path` is not a regular file that can be read (a short reason), or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return say(CANNOT_READ, reason=reason_of(error))
    if not stat.S_ISREG(mode):
        return say(NOT_REGULAR, kind=say(_KINDS.get(stat.S_IFMT(mode), OTHER_KIND)))
    return None


def read_regular_file(path: str, limit: int) -> bytes:
    """The bytes of the regular file `path`; FileProblem naming it if it is not one, or over `limit` bytes.

    Checks before reading, and opens without blocking, so a FIFO, /dev/zero or a huge file
    never hangs the program or fills the memory.
    """
    problem = regular_file_problem(path)
    if problem:
        raise FileProblem(path, problem)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # replaced since the check
                raise FileProblem(path, regular_file_problem(path) or say(NOT_REGULAR, kind=say(OTHER_KIND)))
            raw = handle.read(limit + 1)
    except OSError as error:
        raise FileProblem(path, say(CANNOT_READ, reason=reason_of(error))) from None
    if len(raw) > limit:
        raise FileProblem(path, say(TOO_LARGE, size=os.path.getsize(path) / 2**20, limit=limit / 2**20))
    return raw
