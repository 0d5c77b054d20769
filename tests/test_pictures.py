"""The one picture decoder (flowers_tl/pictures.py) and safe reading (flowers_tl/files.py).

Every case is a real file made here: an EXIF-rotated JPEG, a 16-bit PNG, float TIFFs, a
30000x30000 PNG, a FIFO, symbolic links to /dev/zero and to themselves, a sparse 201 MB file.
No TensorFlow: these run in a second or two.
"""

import os
import stat
import struct
import threading
import zlib

import numpy as np
import pytest
from PIL import Image

from flowers_tl import pictures
from flowers_tl.tool import files
from flowers_tl.errors import DataError
from flowers_tl.pictures import PictureError, load_picture, open_picture

ORIENTATION = 0x0112  # the EXIF tag a phone sets instead of rotating the pixels


def red_left_blue_right(width=40, height=20) -> Image.Image:
    """A landscape picture: left half red, right half blue."""
    picture = Image.new("RGB", (width, height), (0, 0, 255))
    picture.paste((255, 0, 0), (0, 0, width // 2, height))
    return picture


def exif_rotated_jpeg(path, orientation=6):
    """A JPEG whose pixels lie on their side, with the EXIF tag that tells a viewer to turn them."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    red_left_blue_right().save(path, quality=95, exif=exif.tobytes())


def png_of_30000_squared(path):
    """A real, valid 30000x30000 grayscale PNG (4 MB on disk, 900 million pixels when decoded)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    side, rows = 30000, 1000
    block = bytes((side + 1) * rows)  # filter byte 0 then black pixels, for 1000 rows
    compressor = zlib.compressobj(1)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    same = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)  # full flush: same bytes again
    checksum = 1
    for _ in range(side // rows):
        checksum = zlib.adler32(block, checksum)
    end = compressor.flush(zlib.Z_FINISH)[:-4] + struct.pack(">I", checksum)
    data = first + same * (side // rows - 1) + end
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def finishes_within(seconds, function, *args):
    """Run `function(*args)` in a thread; its exception (or None), failing the test if it blocks."""
    outcome = {}

    def run():
        try:
            function(*args)
            outcome["error"] = None
        except Exception as error:  # the error is what the test inspects
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert "error" in outcome, f"{function.__name__}{args} still running after {seconds} s"
    return outcome["error"]


# ---------------------------------------------------------------- decoded as a photo viewer shows it

def test_exif_orientation_is_applied(tmp_path):
    """A phone's portrait photo (pixels on their side, Orientation=6) comes out upright."""
    path = tmp_path / "portrait.jpg"
    exif_rotated_jpeg(path)
    assert Image.open(path).size == (40, 20)  # as stored
    picture = open_picture(str(path))
    assert picture.size == (20, 40)  # as shown: turned 90 degrees clockwise, so the red left half is on top
    pixels = np.asarray(picture, np.float32)
    assert pixels[:18, :, 0].mean() > 200 and pixels[:18, :, 2].mean() < 50
    assert pixels[22:, :, 2].mean() > 200 and pixels[22:, :, 0].mean() < 50
    square = load_picture(str(path), 32, notes=None)  # predict's path: crop-fill of the upright picture
    assert square[0, :, 0].mean() > 200 and square[-1, :, 2].mean() > 200


def test_sixteen_bit_png_is_mapped_by_its_value_range(tmp_path):
    """A 16-bit grayscale PNG (values 1000..3000) was almost all white; now it spans black to white."""
    values = np.linspace(1000, 3000, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = tmp_path / "sixteen.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")  # really a 16-bit picture on disk
    assert np.asarray(Image.open(path).convert("RGB")).mean() > 254  # what a plain convert gives
    notes = []
    pixels = np.asarray(open_picture(str(path), notes.append), np.float32)
    assert pixels.min() == 0 and pixels.max() == 255 and 120 < pixels.mean() < 135
    assert np.all(np.diff(pixels[:, :, 0].ravel()) >= 0)  # the order of values is kept
    assert notes == [f"Note: '{path}' is a {Image.open(path).mode} picture (values 1000 to 3000); it was mapped "
                     "to 8 bits, darkest pixel black and brightest white."]


def test_float_tiff_is_mapped_by_its_value_range(tmp_path):
    """A float TIFF of values 0..1 was all black; now it spans black to white (NaN pixels black)."""
    values = np.linspace(0.0, 1.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    values[0, 0] = np.nan
    path = tmp_path / "float.tif"
    Image.fromarray(values, mode="F").save(path)
    assert Image.open(path).mode == "F"
    assert np.asarray(Image.open(path).convert("RGB")).max() <= 1  # what a plain convert gives
    pixels = np.asarray(open_picture(str(path), notes=None), np.float32)
    assert pixels[0, 0].tolist() == [0, 0, 0] and pixels.max() == 255 and 120 < pixels.mean() < 135


@pytest.mark.parametrize("fill, reason", [(np.nan, "NaN or infinite"), (7.5, r"the same value \(7.5\)")])
def test_float_tiff_without_a_range_is_refused_by_name(tmp_path, fill, reason):
    path = tmp_path / "flat.tif"
    Image.fromarray(np.full((16, 16), fill, np.float32), mode="F").save(path)
    with pytest.raises(PictureError, match=reason) as caught:
        open_picture(str(path))
    assert str(caught.value).startswith(f"'{path}': every pixel of this F picture")


def test_tiny_picture_is_used_with_a_note(tmp_path):
    path = tmp_path / "one_pixel.png"
    Image.new("RGB", (1, 1), (10, 200, 30)).save(path)
    notes = []
    pixels = load_picture(str(path), 192, notes=notes.append)
    assert pixels.shape == (192, 192, 3) and pixels[96, 96].tolist() == [10, 200, 30]
    assert notes == [f"Note: '{path}' is only 1x1 pixels, far smaller than the model's 192x192 input: "
                     "it is enlarged 192 times, so expect a blurry picture and a less reliable answer."]
    Image.new("RGB", (48, 60)).save(tmp_path / "quarter.png")  # 48 = 192 / 4: not far smaller
    load_picture(str(tmp_path / "quarter.png"), 192, notes=notes.append)
    assert len(notes) == 1


# ---------------------------------------------------------------- refused by name, quickly

def test_decompression_bomb_is_refused_by_name(tmp_path):
    """A valid 30000x30000 PNG is refused before its 900 million pixels are decoded."""
    path = tmp_path / "huge.png"
    png_of_30000_squared(path)
    error = finishes_within(10, open_picture, str(path))
    assert isinstance(error, PictureError) and error.path == str(path)
    assert str(error) == (f"'{path}': 900 million pixels, more than the 89 million a picture may have "
                          "(a decompression bomb, or a scan far larger than a photo): make it smaller first")


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    error = finishes_within(5, open_picture, str(fifo))
    assert str(error) == f"'{fifo}': a FIFO (named pipe), not a regular file; it was not read"


def test_link_to_dev_zero_is_refused_without_reading(tmp_path):
    link = tmp_path / "zero.jpg"
    os.symlink("/dev/zero", link)
    error = finishes_within(5, open_picture, str(link))
    assert str(error) == f"'{link}': a character device, not a regular file; it was not read"


def test_symlink_loop_and_folder_and_missing_file(tmp_path):
    loop = tmp_path / "loop.jpg"
    os.symlink(loop, loop)
    with pytest.raises(PictureError, match="cannot be read: a symbolic link that loops back on itself"):
        open_picture(str(loop))
    with pytest.raises(PictureError, match="a folder, not a regular file"):
        open_picture(str(tmp_path))
    with pytest.raises(PictureError, match="missing.jpg': cannot be read: No such file or directory"):
        open_picture(str(tmp_path / "missing.jpg"))


def test_file_over_the_size_bound_is_not_read(tmp_path):
    """A 201 MB file (sparse: no disk used) is refused from its size, before any byte is read."""
    path = tmp_path / "enormous.png"
    with open(path, "wb") as handle:
        handle.truncate(pictures.MAX_PICTURE_BYTES + 2**20)
    with pytest.raises(PictureError, match=r"enormous.png': 201 MB, more than the 200 MB allowed"):
        open_picture(str(path))


def test_corrupt_and_empty_files_name_the_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("my notes")
    red_left_blue_right().save(tmp_path / "whole.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:300])
    for name, reason in [("empty.jpg", "empty (zero-byte) file"), ("text.jpg", "not a picture (unknown file format)"),
                         ("cut.jpg", "truncated or corrupt picture (")]:
        with pytest.raises(PictureError) as caught:
            open_picture(str(tmp_path / name))
        assert str(caught.value).startswith(f"'{tmp_path / name}': {reason}")


# ---------------------------------------------------------------- the one safe-write helper

def test_written_atomically_gives_mode_644_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "metrics.json"
    previous = os.umask(0o022)
    try:
        files.write_text_atomically(str(target), "{}")
    finally:
        os.umask(previous)
    assert target.read_text() == "{}\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644  # like every other output, not mkstemp's 0600
    with pytest.raises(RuntimeError):
        with files.written_atomically(str(target)) as partial:
            with open(partial, "w") as handle:
                handle.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "{}\n" and os.listdir(tmp_path) == ["metrics.json"]


def test_write_error_names_the_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match=r"cannot write '.*file/out.json': Not a directory"):
        files.write_text_atomically(str(tmp_path / "file" / "out.json"), "{}")
