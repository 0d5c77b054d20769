"""Files written whole or not at all, folders claimed, runs stopped cleanly: the command line's wing.

One place for the file-system habits every command needs (reading untrusted files is `reading`):

* `written_atomically(path)` / `write_text_atomically(path, text)`: the one safe-write
  helper. The new file is written under a hidden temporary name in the same folder,
  flushed to disk (fsync), given mode 0644 (less what the umask takes away, like every
  other output) and renamed over `path`; if anything fails or is interrupted the
  temporary file is removed and the old `path` is untouched. `convert` writes its
  shards this way; `cli` saves `model.keras` and its JSON files with the same helper.
* `OutputClaim`: a claim of an output folder (an OS lock that dies with its process, on a lock
  file holding the owner's process id), so two runs never write into one folder at once,
  and a lock file left by a killed run never blocks the next one.
* `interrupt_on_signals()`: SIGTERM (and SIGINT) raise KeyboardInterrupt, so `finally:` blocks
  clean up when a run is stopped by `kill` or a job scheduler, as they do for Ctrl-C.
"""

import contextlib
import fcntl
import os
import signal
import tempfile
import threading
from typing import Iterator, Optional

from ..errors import DataError, OutputExistsError
from ..messages import N_, say
from ..reading import reason_of

PARTIAL_PREFIX = ".partial-"
LOCK_NAME = ".flowers-tl.lock"

CANNOT_WRITE = N_("cannot write '{path}': {reason}. Choose another output folder (one you can write to, with free "
                  "space).")
NOT_A_FOLDER = N_("cannot use '{path}' as {name}: {reason}. Give the path of a folder you can write to "
                  "(it is created if needed).")
OUTPUT_FOLDER = N_("the output folder")
CLAIMED = N_("'{path}' is being written by another run (process {pid}, lock file '{lock}'): wait for it to "
             "finish or stop it (kill {pid}), or choose another output folder.")

IS_A_FILE = N_("it is a file")
PART_IS_A_FILE = N_("a part of that path is a file ('{part}')")
NOT_WRITABLE = N_("it is not writable ({reason})")
class CannotWrite(DataError):
    """`written_atomically` could not write `path`; `reason` is the system's short reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(say(CANNOT_WRITE, path=path, reason=reason))
        self.path = path
        self.reason = reason


def _umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def written_atomically(path: str, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary path beside `path`; when the block ends normally, it becomes `path`.

    Write the file at the yielded path (any writer: open(), model.save(), savefig()).
    The temporary file is made fresh under a random hidden name (O_EXCL: never an existing
    file or a link planted there), and the rename replaces whatever `path` was, a link
    included, without following it: nothing is ever written through a link. On success it
    is fsynced, made mode 0644 (umask applied) and renamed to `path`, so readers see the
    old file or the whole new one, never half of it. On any error or interruption the
    temporary file is removed and `path` is left as it was. OSErrors (a full disk, a read-only
    folder) become `CannotWrite`, a DataError naming `path`. `suffix` ends the temporary name: Keras'
    model.save() needs `written_atomically("model.keras", suffix=".keras")`.
    """
    folder, name = os.path.split(path)
    partial = None
    try:
        descriptor, partial = tempfile.mkstemp(prefix=f"{PARTIAL_PREFIX}{os.getpid()}-{name}.", suffix=suffix,
                                               dir=folder or ".")
        os.close(descriptor)
        yield partial
        publish(partial, path)
    except OSError as error:
        raise CannotWrite(path, reason_of(error)) from None
    finally:
        if partial:
            with contextlib.suppress(OSError):
                os.remove(partial)


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


def check_output_folder(path: str, name: Optional[str] = None) -> None:
    """DataError naming `path` (as `name`: an option such as --output, else "the output folder") when it
    cannot become a folder: it is a file, or a part of the path above it is. Nothing is created."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise _folder_problem(path, name, say(IS_A_FILE))
    above = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise _folder_problem(path, name, say(PART_IS_A_FILE, part=above))


def make_output_folder(path: str, name: Optional[str] = None) -> None:
    """Create the output folder `path` (and its parents) and make sure a file can be written in it, for
    real (permission bits say nothing for root or a read-only file system); DataError naming it if not."""
    check_output_folder(path, name)
    try:
        os.makedirs(path, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(descriptor)
        os.remove(probe)
    except OSError as error:
        raise _folder_problem(path, name, say(NOT_WRITABLE, reason=reason_of(error))) from None


def _folder_problem(path: str, name: Optional[str], reason: str) -> DataError:
    return DataError(say(NOT_A_FOLDER, path=path, name=name or say(OUTPUT_FOLDER), reason=reason))


class OutputClaim:
    """`with OutputClaim(folder):` only one run at a time writes into `folder`.

    The claim is an OS lock (`fcntl.flock`) on a lock file in the folder, which also holds
    the owner's process id for the message. The system frees the lock when its process
    ends, however it ends (even SIGKILL or a crash), so a lock file left behind never
    blocks the next run; a second claim while the owner runs is refused with
    OutputExistsError naming the folder, the owner and the remedy.
    """

    def __init__(self, folder: str):
        self.folder = folder
        self.lock = os.path.join(folder, LOCK_NAME)
        self._descriptor = -1

    def __enter__(self) -> "OutputClaim":
        while self._descriptor < 0:
            descriptor = self._open()
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _owner(descriptor)
                os.close(descriptor)
                raise OutputExistsError(say(CLAIMED, path=self.folder, pid=owner, lock=self.lock)) from None
            if _same_file(descriptor, self.lock):
                self._descriptor = descriptor
            else:  # the owner removed it as it finished: claim the file now in place
                os.close(descriptor)
        os.ftruncate(self._descriptor, 0)
        os.write(self._descriptor, f"{os.getpid()}\n".encode("ascii"))
        return self

    def _open(self) -> int:
        """The lock file, opened (created if need be) without following a link; DataError if impossible."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return os.open(self.lock, flags, 0o644)
        except OSError as error:
            raise DataError(say(CANNOT_WRITE, path=self.folder, reason=reason_of(error))) from None

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.lock)  # removed while still locked, so no other run claims it meanwhile
        os.close(self._descriptor)
        self._descriptor = -1


def _owner(descriptor: int) -> int:
    """The process id written in an open lock file (0 when empty or unreadable)."""
    try:
        return int(os.pread(descriptor, 32, 0).decode("ascii").strip() or 0)
    except (OSError, ValueError):
        return 0


def _same_file(descriptor: int, path: str) -> bool:
    """True when `path` is still the file open as `descriptor` (not removed or replaced meanwhile)."""
    try:
        here = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(descriptor)
    return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)


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
