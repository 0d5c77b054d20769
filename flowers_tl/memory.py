"""How much memory this process can still use, and whether the fast path's activations fit in it.

`model.check_memory` refuses a training step that cannot fit, and the fast path's
`ActivationCache` keeps the activations on disk when they would not fit in memory; both ask
`available_memory()`, which reads every limit that can end a run: what the machine has free
(/proc/meminfo), the process's cgroup (a container's or a job's limit), `ulimit -v` (RLIMIT_AS)
and `ulimit -d` (RLIMIT_DATA, which Linux applies to the heap and to private writable mappings).
"""

import os
import resource
from typing import Optional

from .errors import ConfigError
from .messages import N_, say

PLACE_ENV_VARIABLE = "FLOWERS_TL_ACTIVATIONS"
PLACES = ("auto", "memory", "disk")
# In memory the fast path holds the activations three times at its peak (the batches of the
# pass, their concatenation, and TensorFlow's copy that training gathers from): measured at
# 20,000 photos, 2.39 GB of activations raised the peak resident memory by 7.21 GB.
MEMORY_SHARE = 1 / 3
UNKNOWN_PLACE = N_("{variable}='{value}' is not a place for the activations: use one of {places}.")
NO_ROOM_IN_MEMORY = N_("{variable}=memory, but the activations of {images} photos take {size:.1f} GB and only "
                       "{free:.1f} GB of memory is left: set {variable}=auto (or disk) to keep them on disk.")


def available_memory() -> Optional[int]:
    """Bytes this process can still use: the smallest of what the machine has free (MemAvailable),
    what its cgroup allows (a container's or a job's limit, less its usage), what `ulimit -v`
    (RLIMIT_AS) leaves of its address space and what `ulimit -d` (RLIMIT_DATA) leaves of its
    data; all physical memory when none is known; None if unknown.

    A limit the check ignored let a run start and end in a segmentation fault with no message.
    """
    known = [memory for memory in (_free_memory(), _cgroup_memory_left(), _address_space_left(), _data_left())
             if memory is not None]
    if known:
        return min(known)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _proc_value(path: str, key: str) -> Optional[int]:
    """The kB value of `key:` in a /proc file such as /proc/meminfo, in bytes (None if absent)."""
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _free_memory() -> Optional[int]:
    """Linux's MemAvailable: what the machine can give without swapping."""
    return _proc_value("/proc/meminfo", "MemAvailable")


def _cgroup_memory_left() -> Optional[int]:
    """The memory limit of this process's cgroup less its usage (v2 `memory.max` / `memory.current`,
    v1 `memory.limit_in_bytes` / `memory.usage_in_bytes`); None where there is no limit.

    The group's folder is looked for under the mount, else the mount itself is read (inside a
    container the group's own limits are at the root).
    """
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    left = []
    for line in lines:
        _, controllers, group = line.split(":", 2)
        if not controllers:  # v2 (unified hierarchy), mounted alone or beside v1
            mounts, names = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"), ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):
            mounts, names = ("/sys/fs/cgroup/memory",), ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        for folder in [os.path.join(mount, group.lstrip("/")) for mount in mounts] + list(mounts):
            limit, usage = (_number_in(os.path.join(folder, name)) for name in names)
            if limit is not None and usage is not None:
                if limit < 2**60:  # v1 writes "no limit" as about 2**63
                    left.append(max(0, limit - usage))
                break
    return min(left) if left else None


def _number_in(path: str) -> Optional[int]:
    """The integer a cgroup file holds (None for 'max', a missing or unreadable file)."""
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _address_space_left() -> Optional[int]:
    """What `ulimit -v` (RLIMIT_AS) leaves of this process's address space (None when unlimited)."""
    return _limit_left(resource.RLIMIT_AS, "VmSize")


def _data_left() -> Optional[int]:
    """What `ulimit -d` (RLIMIT_DATA) leaves of this process's data: heap and private writable mappings
    (VmData), which is where numpy arrays and TensorFlow tensors live (None when unlimited)."""
    return _limit_left(resource.RLIMIT_DATA, "VmData")


def _limit_left(limit_kind: int, used_key: str) -> Optional[int]:
    """A resource limit less what /proc/self/status says this process uses of it (None when unlimited)."""
    limit, _ = resource.getrlimit(limit_kind)
    if limit == resource.RLIM_INFINITY:
        return None
    return max(0, limit - (_proc_value("/proc/self/status", used_key) or 0))


def chosen_place() -> str:
    """The place FLOWERS_TL_ACTIVATIONS asks for: auto (the default), memory or disk."""
    value = os.environ.get(PLACE_ENV_VARIABLE, "").strip().lower() or "auto"
    if value not in PLACES:
        raise ConfigError(say(UNKNOWN_PLACE, variable=PLACE_ENV_VARIABLE, value=value, places=", ".join(PLACES)))
    return value


def place_for(size: int, images: int) -> str:
    """"memory" or "disk" for `size` bytes of activations of `images` photos; refuses a forced
    "memory" that cannot fit (it would end in an out-of-memory kill, with no message)."""
    place, free = chosen_place(), available_memory()
    fits = free is None or size <= free * MEMORY_SHARE
    if place == "memory" and not fits:
        raise ConfigError(say(NO_ROOM_IN_MEMORY, variable=PLACE_ENV_VARIABLE, images=images,
                              size=size / 1e9, free=free / 1e9))
    if place == "auto":
        place = "memory" if fits else "disk"
    return place
