"""Errors a learner can cause, each with a message that says what to do.

Every error raised on purpose by flowers_tl derives from `FlowersTLError`, so the
command line and the notebooks can show its one-paragraph message instead of a
long TensorFlow traceback.
"""


class FlowersTLError(Exception):
    """Base class: something the user can fix; the message says how."""


class DataError(FlowersTLError, ValueError):
    """The data pattern, a shard, or a record is not usable."""


class OfflineWithoutData(DataError):
    """Offline, with no local shards and no copy of tf_flowers: the message says how to give data."""


class WeightsError(FlowersTLError, ValueError):
    """The backbone weights cannot be found, downloaded or loaded."""


class ConfigError(FlowersTLError, ValueError):
    """An argument (image size, batch size, head...) is not valid."""


class WrongTypeError(ConfigError, TypeError):
    """An argument of the wrong type ("3" for epochs, an array for a DataSplit); the message names it."""


class OutputExistsError(FlowersTLError, FileExistsError):
    """An output would overwrite an existing model without permission."""


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an error's message (TensorFlow's `.message` when it has one), at most
    `limit` characters, or the error's type name when the message is empty: what a one-line
    message quotes of an error it cannot fix itself."""
    text = getattr(error, "message", None) or str(error)
    return (str(text).strip().splitlines() or [type(error).__name__])[0][:limit]
