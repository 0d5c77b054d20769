"""Picture files (JPEG, PNG, TIFF, grayscale, 16-bit, float, CMYK, RGBA...) to square RGB arrays.

The one picture decoder of the package: `convert` (photos to TFRecords) and
`predict` (a learner's own photo) both use it, so both see a picture as a photo
viewer shows it:

* the camera's EXIF orientation is applied (a portrait phone photo stands upright);
* 16-bit and 32-bit integer pictures (PNG mode I;16 / I) and float pictures
  (TIFF mode F) are mapped to 8 bits by their real value range, darkest pixel to
  black and brightest to white; a picture without any finite value is refused;
* transparent parts become white, CMYK and grayscale become RGB;
* then it is scaled so the shorter side fits and center-cropped to a square
  ("crop-fill": no distortion, no padding).

Anything that is not a usable picture (not a regular file, too large, not a
picture, cut short, a decompression bomb) raises `PictureError`, a `DataError`
naming the file, so a caller can report it and go on with the next file. A
picture much smaller than the model's input is still used, with a note.
"""

import io
import os
import re
import warnings
from typing import Callable, Optional

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .reading import FileProblem, read_regular_file
from .messages import N_, say

PICTURE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
MAX_PICTURE_BYTES = 200 * 2**20  # a 50-megapixel camera's PNG is about 150 MB
MAX_PICTURE_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's own bomb limit (about 89 megapixels)
SMALL_PICTURE_FRACTION = 4  # a note when the shorter side is under 1/4 of the model's input

EMPTY = N_("empty (zero-byte) file")
NOT_A_PICTURE = N_("not a picture (unknown file format)")
CORRUPT = N_("truncated or corrupt picture ({detail})")
TOO_MANY_PIXELS = N_("{pixels} pixels, more than the {limit} million a picture may have "
                     "(a decompression bomb, or a scan far larger than a photo): make it smaller first")
NO_VALUES = N_("every pixel of this {mode} picture is NaN or infinite: there is nothing to show")
FLAT = N_("every pixel of this {mode} picture has the same value ({value:g}): there is nothing to show")
SMALL_PICTURE = N_("Note: '{path}' is only {width}x{height} pixels, far smaller than the model's "
                   "{size}x{size} input: it is enlarged {factor:.0f} times, so expect a blurry picture "
                   "and a less reliable answer.")
NOT_SUPPORTED = N_("{kind} picture, not supported here: convert it to JPEG or PNG first")
FAR_FROM_SQUARE = N_("Note: '{path}' is {width}x{height} pixels, far from square: only its central {side}x{side} "
                     "square is used (the model sees square pictures); crop the part that matters to a square first.")
HIGH_BIT_DEPTH = N_("Note: '{path}' is a {mode} picture (values {low:g} to {high:g}); it was mapped to "
                    "8 bits, darkest pixel black and brightest white.")

# Picture kinds Pillow cannot read, known by their first bytes (an ISO media 'ftyp' brand, an SVG tag)
# or their extension: named in the message, with what to do, instead of "unknown file format".
_UNSUPPORTED_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"heim": "HEIC", b"heis": "HEIC",
                       b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}
_UNSUPPORTED_EXTENSIONS = {".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF", ".svg": "SVG", ".svgz": "SVG"}
FAR_FROM_SQUARE_RATIO = 2  # a note when the crop keeps half the picture or less
_WIDE_MODES = ("I", "F")  # 32-bit integer and float; "I;16", "I;16B"... start with "I"


class PictureError(FileProblem):
    """A file that is not a usable picture; `path` and `reason` name the file and say why."""


def read_picture_bytes(path: str) -> bytes:
    """The bytes of a picture file: only a regular file, at most MAX_PICTURE_BYTES (PictureError)."""
    try:
        return read_regular_file(path, MAX_PICTURE_BYTES)
    except FileProblem as problem:
        raise PictureError(problem.path, problem.reason) from None


def decode_picture(raw: bytes, path: str, notes: Optional[Callable[[str], None]] = None) -> Image.Image:
    """Fully decoded, upright RGB picture from file bytes; PictureError naming `path` if it is not one.

    `notes(text)` receives the notes worth telling (a high bit depth mapped to 8 bits).
    """
    if not raw:
        raise PictureError(path, say(EMPTY))
    try:
        with warnings.catch_warnings():  # Pillow warns, then refuses, above MAX_PICTURE_PIXELS
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(raw))
            picture.load()  # decode everything now: truncated files fail here, not later
            picture = ImageOps.exif_transpose(picture)
    except UnidentifiedImageError:
        kind = unsupported_kind(path, raw)
        raise PictureError(path, say(NOT_SUPPORTED, kind=kind) if kind else say(NOT_A_PICTURE)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise PictureError(path, say(TOO_MANY_PIXELS, pixels=_pixel_count(error),
                                     limit=MAX_PICTURE_PIXELS // 10**6)) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as error:
        raise PictureError(path, say(CORRUPT, detail=error)) from None
    if picture.mode.startswith(_WIDE_MODES):
        picture = _to_8_bits(picture, path, notes)
    return to_rgb(picture)


def unsupported_kind(path: str, raw: bytes = b"") -> Optional[str]:
    """"HEIC", "SVG"... for a picture kind that exists but cannot be read here (by its first bytes, else
    its extension), None otherwise: an iPhone's HEIC photo renamed .jpg is still named for what it is."""
    if raw[4:8] == b"ftyp" and raw[8:12] in _UNSUPPORTED_BRANDS:
        return _UNSUPPORTED_BRANDS[raw[8:12]]
    if b"<svg" in raw[:4096].lower():
        return "SVG"
    return _UNSUPPORTED_EXTENSIONS.get(os.path.splitext(path)[1].lower())


def _pixel_count(error: Exception) -> str:
    """The pixel count in Pillow's 'Image size (N pixels) exceeds limit ...' (N in millions)."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    return f"{int(found.group(1)) / 10**6:.0f} million" if found else "too many"


def _to_8_bits(picture: Image.Image, path: str, notes) -> Image.Image:
    """A grayscale picture of 16/32-bit integers or floats as 8 bits, stretched over its value range."""
    values = np.asarray(picture, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise PictureError(path, say(NO_VALUES, mode=picture.mode))
    low, high = float(values[finite].min()), float(values[finite].max())
    if high == low:
        raise PictureError(path, say(FLAT, mode=picture.mode, value=low))
    scaled = np.where(finite, (values - low) / (high - low) * 255.0, 0.0)
    if notes:
        notes(say(HIGH_BIT_DEPTH, path=path, mode=picture.mode, low=low, high=high))
    return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")


def open_picture(path: str, notes: Optional[Callable[[str], None]] = None) -> Image.Image:
    """Read and fully decode a picture file as upright RGB; PictureError naming the file if unusable."""
    return decode_picture(read_picture_bytes(path), path, notes)


def to_rgb(picture: Image.Image) -> Image.Image:
    """RGB version of a picture; transparent parts become white, CMYK and grayscale convert."""
    if picture.mode in ("RGBA", "LA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return picture.convert("RGB")


def small_picture_note(path: str, picture: Image.Image, size: int) -> Optional[str]:
    """A note when the picture's shorter side is under 1/SMALL_PICTURE_FRACTION of `size`, else None."""
    width, height = picture.size
    if min(width, height) * SMALL_PICTURE_FRACTION >= size:
        return None
    return say(SMALL_PICTURE, path=path, width=width, height=height, size=size,
               factor=size / min(width, height))


def far_from_square_note(path: str, picture: Image.Image) -> Optional[str]:
    """A note when `crop_fill` keeps half the picture or less (a 4000x20 panorama: its central 20x20)."""
    width, height = picture.size
    side = min(width, height)
    if max(width, height) < FAR_FROM_SQUARE_RATIO * side:
        return None
    return say(FAR_FROM_SQUARE, path=path, width=width, height=height, side=side)


def crop_fill(picture: Image.Image, size: int) -> Image.Image:
    """Scale so the shorter side is `size` (bicubic), then center-crop to size x size."""
    width, height = picture.size
    scale = size / min(width, height)
    resized = picture.resize((max(size, round(width * scale)), max(size, round(height * scale))),
                             Image.BICUBIC)
    left = (resized.width - size) // 2
    top = (resized.height - size) // 2
    return resized.crop((left, top, left + size, top + size))


def load_picture(path: str, size: int, notes: Optional[Callable[[str], None]] = print) -> np.ndarray:
    """A picture file as a float32 array [size, size, 3] of pixels in [0, 255].

    Notes (a tiny or far from square picture, a high bit depth) go to `notes` (print by default; None: silent).
    """
    picture = open_picture(path, notes)
    for note in (far_from_square_note(path, picture), small_picture_note(path, picture, size)):
        if note and notes:
            notes(note)
    return np.asarray(crop_fill(picture, size), dtype=np.float32)


def encode_jpeg(picture: Image.Image, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB picture."""
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def is_picture_name(path: str) -> bool:
    """True for file names with a picture extension (case-insensitive)."""
    return os.path.splitext(path)[1].lower() in PICTURE_EXTENSIONS
