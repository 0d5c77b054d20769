"""Picture files (JPEG, PNG, grayscale, CMYK, RGBA...) to square RGB arrays, with clear errors.

Used by `convert` (photos to TFRecords) and `predict` (a learner's own photo), so
both see pictures prepared the same way: RGB, scaled so the shorter side fits,
then center-cropped to a square ("crop-fill": no distortion, no padding).
"""

import io
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DataError

PICTURE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")


def open_picture(path: str) -> Image.Image:
    """Fully decode a picture file as RGB; DataError naming the file if it is not a usable picture."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise DataError(f"cannot read picture '{path}': {error.strerror or error}") from None
    if not raw:
        raise DataError(f"picture '{path}' is an empty (zero-byte) file")
    try:
        picture = Image.open(io.BytesIO(raw))
        picture.load()  # decode everything now: truncated files fail here, not later
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"'{path}' is not a readable picture ({error}); "
                        "use a JPEG or PNG file") from None
    return to_rgb(picture)


def to_rgb(picture: Image.Image) -> Image.Image:
    """RGB version of a picture; transparent parts become white, CMYK and grayscale convert."""
    if picture.mode in ("RGBA", "LA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return picture.convert("RGB")


def crop_fill(picture: Image.Image, size: int) -> Image.Image:
    """Scale so the shorter side is `size` (bicubic), then center-crop to size x size."""
    width, height = picture.size
    scale = size / min(width, height)
    resized = picture.resize((max(size, round(width * scale)), max(size, round(height * scale))),
                             Image.BICUBIC)
    left = (resized.width - size) // 2
    top = (resized.height - size) // 2
    return resized.crop((left, top, left + size, top + size))


def load_picture(path: str, size: int) -> np.ndarray:
    """A picture file as a float32 array [size, size, 3] of pixels in [0, 255]."""
    return np.asarray(crop_fill(open_picture(path), size), dtype=np.float32)


def encode_jpeg(picture: Image.Image, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB picture."""
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def is_picture_name(path: str) -> bool:
    """True for file names with a picture extension (case-insensitive)."""
    return os.path.splitext(path)[1].lower() in PICTURE_EXTENSIONS
