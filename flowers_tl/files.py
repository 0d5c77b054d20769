"""Files written whole or not at all, files read only when they are safe to read, folders claimed.

One place for the file-system habits every command needs:

* `written_atomically(path)` / `write_text_atomically(path, text)`: the one safe-write
  helper. The new file is written under a hidden temporary name in the same folder,
  flushed to disk (fsync), given mode 0644 (less what the umask takes away, like every
  other output) and renamed over `path`; if anything fails or is interrupted the
  temporary file is removed and the old `path` is untouched. `convert` writes its
  shards this way; `cli` saves `model.keras` and its JSON files with the same helper.
* `read_regular_file(path, limit)`: bytes of a file, refused by name (`DataError`) when
  it is a FIFO, a device such as /dev/zero, a socket, a symbolic-link loop, or larger
  than `limit`, so that reading never blocks and never fills the memory.
* `OutputClaim`: an atomic claim of an output folder (a lock file linked in place, holding the
  owner's process id), so two runs never write into one folder at once;
  a lock left by a process that no longer exists is taken over.
* `interrupt_on_signals()`: SIGTERM (and SIGINT) raise KeyboardInterrupt, so `finally:` blocks
  clean up when a run is stopped by `kill` or a job scheduler, as they do for Ctrl-C.
"""

import contextlib
import errno
import os
import signal
import stat
import threading
import time
from typing import Iterator, Optional

from .errors import DataError, OutputExistsError
from .messages import say

PARTIAL_PREFIX = ".partial-"
LOCK_NAME = ".flowers-tl.lock"

FILE_PROBLEM = "'{path}': {reason}"
NOT_REGULAR = "{kind}, not a regular file; it was not read"
TOO_LARGE = "{size:.0f} MB, more than the {limit:.0f} MB allowed; it was not read"
CANNOT_READ = "cannot be read: {reason}"
CANNOT_WRITE = "cannot write '{path}': {reason}. Choose another output folder (one you can write to, with free space)."
NOT_A_FOLDER = ("cannot use '{path}' as the output folder: {reason}. Give the path of a folder "
                "(it is created if needed).")
CLAIMED = ("'{path}' is being written by another run (process {pid}, lock file '{lock}'): wait for it to "
           "finish, or choose another output folder.")

IS_A_FILE = "it is a file"
PART_IS_A_FILE = "a part of that path is a file"
LOOPS = "a symbolic link that loops back on itself"
FIFO = "a FIFO (named pipe)"
CHARACTER_DEVICE = "a character device"
BLOCK_DEVICE = "a block device"
SOCKET = "a socket"
FOLDER = "a folder"
OTHER_KIND = "something else"
_KINDS = {stat.S_IFIFO: FIFO, stat.S_IFCHR: CHARACTER_DEVICE, stat.S_IFBLK: BLOCK_DEVICE,
          stat.S_IFSOCK: SOCKET, stat.S_IFDIR: FOLDER}


class FileProblem(DataError):
    """A file that cannot be used; `path` names it and `reason` says why (the message holds both)."""

    def __init__(self, path: str, reason: str):
        super().__init__(say(FILE_PROBLEM, path=path, reason=reason))
        self.path = path
        self.reason = reason


class CannotWrite(DataError):
    """`written_atomically` could not write `path`; `reason` is the system's short reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(say(CANNOT_WRITE, path=path, reason=reason))
        self.path = path
        self.reason = reason


def reason_of(error: OSError) -> str:
    """The short reason of an OSError ("No space left on device"), for messages."""
    if error.errno == errno.ELOOP:
        return say(LOOPS)
    return error.strerror or str(error)


def _umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def written_atomically(path: str, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary path beside `path`; when the block ends normally, it becomes `path`.

    Write the file at the yielded path (any writer: open(), model.save(), a TFRecordWriter).
    On success it is fsynced, made mode 0644 (umask applied) and renamed to `path`, so readers
    see the old file or the whole new one, never half of it. On any error or interruption the
    temporary file is removed and `path` is left as it was. OSErrors (a full disk, a read-only
    folder) become `CannotWrite`, a DataError naming `path`. `suffix` ends the temporary name: Keras'
    model.save() needs `written_atomically("model.keras", suffix=".keras")`.
    """
    partial = partial_path(path, suffix)
    try:
        yield partial
        publish(partial, path)
    except OSError as error:
        raise CannotWrite(path, reason_of(error)) from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(partial)


def partial_path(path: str, suffix: str = ".tmp") -> str:
    """The hidden temporary name beside `path` that this process writes before renaming."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f"{PARTIAL_PREFIX}{os.getpid()}-{name}{suffix}")


def publish(partial: str, path: str) -> None:
    """Make a complete temporary file `path`: flush it to disk, mode 0644 (umask applied), rename.

    The last step of `written_atomically`; callers that must write several files before
    any is published (convert's shards, all or nothing) call it for each in turn.
    """
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    os.chmod(partial, 0o666 & ~_umask())
    os.replace(partial, path)


def write_text_atomically(path: str, text: str) -> None:
    """Write `text` (plus a final newline) to `path` whole or not at all (see `written_atomically`)."""
    with written_atomically(path) as partial:
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


def remove_stale_partials(folder: str, suffix: str) -> list:
    """Remove temporary files (`.partial-*<suffix>`) an interrupted run left in `folder`; their names."""
    stale = [name for name in os.listdir(folder) if name.startswith(PARTIAL_PREFIX) and name.endswith(suffix)]
    for name in stale:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(folder, name))
    return stale


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


def make_output_folder(path: str) -> None:
    """Create the output folder `path` (and its parents); DataError naming it when that cannot be done."""
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        raise DataError(say(NOT_A_FOLDER, path=path, reason=say(IS_A_FILE))) from None
    except OSError as error:
        reason = say(PART_IS_A_FILE) if error.errno == errno.ENOTDIR else reason_of(error)
        raise DataError(say(NOT_A_FOLDER, path=path, reason=reason)) from None


def _process_exists(pid: int) -> bool:
    """True when a process with this id runs (or exists under another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputClaim:
    """`with OutputClaim(folder):` only one run at a time writes into `folder`.

    The claim is a lock file holding the owner's process id, put in place with os.link
    (atomic, and refused when the file exists, on every local file system). A second
    claim is refused with OutputExistsError naming the folder and the owner; a lock
    whose process is gone (the run was killed) is removed and the claim made again.
    The owner is looked for on this machine only: two machines sharing a network
    folder are not told apart.
    """

    def __init__(self, folder: str):
        self.folder = folder
        self.lock = os.path.join(folder, LOCK_NAME)

    def __enter__(self) -> "OutputClaim":
        for _ in range(2):
            if self._try_claim():
                return self
            owner = self._owner()
            if (owner and _process_exists(owner)) or (not owner and self._just_made()):
                raise OutputExistsError(say(CLAIMED, path=self.folder, pid=owner, lock=self.lock))
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.lock)  # left by a run that no longer exists
        raise OutputExistsError(say(CLAIMED, path=self.folder, pid=self._owner(), lock=self.lock))

    def _try_claim(self) -> bool:
        """Make the lock file, whole (pid written first, then linked in place); False if it exists.

        On file systems without hard links (FAT on a USB stick, some network and FUSE mounts)
        the lock is created with O_EXCL instead, and the pid written right after.
        """
        mine = f"{self.lock}.{os.getpid()}"
        try:
            with open(mine, "w", encoding="ascii") as handle:
                handle.write(f"{os.getpid()}\n")
            try:
                os.link(mine, self.lock)  # atomic, and fails when the lock exists
            except FileExistsError:
                raise
            except OSError:  # no hard links here
                with open(self.lock, "x", encoding="ascii") as handle:
                    handle.write(f"{os.getpid()}\n")
            return True
        except FileExistsError:
            return False
        except OSError as error:
            raise DataError(say(CANNOT_WRITE, path=self.folder, reason=reason_of(error))) from None
        finally:
            with contextlib.suppress(OSError):
                os.remove(mine)

    def _just_made(self) -> bool:
        """True for a lock file made in the last few seconds (its pid may not be written yet)."""
        try:
            return time.time() - os.stat(self.lock).st_mtime < 5
        except OSError:
            return False

    def _owner(self) -> int:
        """The process id written in the lock file (0 when unreadable or half-written)."""
        try:
            with open(self.lock, encoding="ascii") as handle:
                return int(handle.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.lock)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGINT raise KeyboardInterrupt, so clean-up code runs.

    SIGINT is set too because a process started in the background by a shell inherits
    SIGINT ignored, and would then never clean up. Only the main thread can install
    signal handlers; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _raise_interrupt) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
