"""The limits on the numbers a user gives (epochs, sizes, seeds...), each written once.

The command line checks them while it reads its arguments (argparse `type=`), so a wrong
number is a usage error before TensorFlow starts; the library calls the same functions, so a
notebook user gets the same sentence. Each rule takes the value and the name the user wrote it
under (`--epochs` on the command line, `epochs` in Python) and returns the checked value.
Importing this module costs nothing (no TensorFlow).
"""

import numbers

from .errors import ConfigError, WrongTypeError
from .messages import N_, say
from .records import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE

MOBILENET_BLOCKS = 16  # MobileNetV2's inverted-residual blocks, numbered 1..16 (Keras' block_1 .. block_16)
LARGEST_SEED = 2**32 - 1  # NumPy's and Keras' seeds are 32-bit

WRONG_TYPE = N_("{name} must be {kind}, got {value} (a {type}): write it without quotes, e.g. {name}={example}.")
WHOLE_NUMBER = N_("a whole number")
NUMBER = N_("a number")
TOO_FEW = N_("{name} must be at least {least}, got {value}.")
NOT_ABOVE_ZERO = N_("{name} must be above 0, got {value}.")
SEED_RANGE = N_("{name} {value} must be between 0 and {largest} (a seed is any whole number in that range).")
NO_SUCH_BLOCK = N_("{name} {value}: MobileNetV2 has blocks 1..{blocks} (13 fine-tunes its top 4).")
IMAGE_TOO_SMALL = N_("image size {height}x{width} is too small: MobileNetV2 needs at least {least}x{least} "
                     "pixels (the course uses 192x192).")
IMAGE_TOO_BIG = N_("image size {height}x{width} is too large: the largest that fits is {most}x{most} (the course "
                   "uses 192x192; MobileNetV2 was trained at 224x224 and gains little above it).")
NOT_A_SIZE = N_("{name} must be a whole number of pixels such as 192, or a (height, width) pair, got {value} "
                "(a {type}).")


def whole_number(value, name: str) -> int:
    """`value` as an int; WrongTypeError naming `name` for "3", 3.0, True or None (a plain `int()` would
    take some and turn others into a raw Python error far from the call)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise WrongTypeError(say(WRONG_TYPE, name=name, kind=say(WHOLE_NUMBER), value=repr(value),
                                 type=type(value).__name__, example=3))
    return int(value)


def at_least(value, name: str, least: int = 1) -> int:
    """A whole number of at least `least`: epochs, batch sizes, shard counts, photos to show."""
    value = whole_number(value, name)
    if value < least:
        raise ConfigError(say(TOO_FEW, name=name, least=least, value=value))
    return value


def above_zero(value, name: str) -> float:
    """A number above 0 (a learning rate); NaN is refused too."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise WrongTypeError(say(WRONG_TYPE, name=name, kind=say(NUMBER), value=repr(value),
                                 type=type(value).__name__, example="1e-4"))
    if not value > 0:
        raise ConfigError(say(NOT_ABOVE_ZERO, name=name, value=value))
    return float(value)


def seed(value, name: str = "seed"):
    """None (a different run each time) or a whole number NumPy and Keras accept as a seed."""
    if value is None:
        return None
    value = whole_number(value, name)
    if not 0 <= value <= LARGEST_SEED:
        raise ConfigError(say(SEED_RANGE, name=name, value=value, largest=LARGEST_SEED))
    return value


def block(value, name: str = "from_block") -> int:
    """A MobileNetV2 block number, 1..16: where fine-tuning starts."""
    value = whole_number(value, name)
    if not 1 <= value <= MOBILENET_BLOCKS:
        raise ConfigError(say(NO_SUCH_BLOCK, name=name, value=value, blocks=MOBILENET_BLOCKS))
    return value


def image_size_pair(image_size, name: str = "image_size"):
    """(height, width) from 192 or (192, 192): whole numbers only, so "96" is not read as 9x6."""
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        return (int(image_size), int(image_size))
    if not isinstance(image_size, (str, bytes)) and hasattr(image_size, "__len__") and len(image_size) == 2:
        try:  # a tuple, a list, a NumPy array, a model's input shape[1:3]
            return tuple(whole_number(side, name) for side in image_size)
        except WrongTypeError:
            pass  # said below, for the whole value
    raise WrongTypeError(say(NOT_A_SIZE, name=name, value=repr(image_size), type=type(image_size).__name__))


def image_size(value, name: str = "image_size"):
    """An input size MobileNetV2 can take and memory can hold: MIN_IMAGE_SIZE..MAX_IMAGE_SIZE a side."""
    height, width = image_size_pair(value, name)
    if min(height, width) < MIN_IMAGE_SIZE:
        raise ConfigError(say(IMAGE_TOO_SMALL, height=height, width=width, least=MIN_IMAGE_SIZE))
    if max(height, width) > MAX_IMAGE_SIZE:
        raise ConfigError(say(IMAGE_TOO_BIG, height=height, width=width, most=MAX_IMAGE_SIZE))
    return value
