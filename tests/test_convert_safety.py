"""`flowers-tl convert` under stress: odd pictures, odd files, full and read-only disks, signals, two runs.

Every case is real: pictures made with Pillow, a FIFO from os.mkfifo, symbolic links, a tmpfs of
256 KB and a read-only tmpfs (mounted in a private user and mount namespace with `unshare`),
SIGINT, SIGTERM, SIGKILL and SIGSTOP sent to real `python -m flowers_tl convert` processes.
"""

import glob
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from flowers_tl import data
from flowers_tl.tool import convert, files
from flowers_tl.errors import ConfigError, DataError, OutputExistsError
from flowers_tl.records import MAX_IMAGE_SIZE

from conftest import iter_records
from test_pictures import exif_rotated_jpeg, png_of_30000_squared

SIZE = 32


def photo_tree(root, samples_dir, per_class=2, classes=("daisy", "roses"), side=64):
    """root/<class>/<n>.jpg: real sample photos, shrunk to `side` pixels, each one different (up to 1600)."""
    for name in classes:
        sample = Image.open(next(samples_dir.glob(f"{name}__*.jpg"))).convert("RGB")
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            left, top = index % 40, index // 40  # a different crop per copy: no two photos are the same
            crop = sample.crop((left, top, sample.width - 40 + left, sample.height - 40 + top))
            crop.resize((side, side)).save(root / name / f"{index}.jpg", quality=90)
    return root


def run_convert(*args, **options):
    """A real `python -m flowers_tl convert ...` process (Popen), output captured as text."""
    return subprocess.Popen([sys.executable, "-m", "flowers_tl", "convert", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)


def wait_for(pattern, process, seconds=120):
    """Wait until a file matches `pattern` while `process` runs (fails if it ends first)."""
    deadline = time.monotonic() + seconds
    while not glob.glob(pattern):
        assert process.poll() is None, f"convert ended first: {process.communicate()}"
        assert time.monotonic() < deadline, f"nothing matched {pattern} within {seconds} s"
        time.sleep(0.01)


def leftovers(folder):
    """Every entry of `folder`, hidden ones included."""
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def decoded(record):
    return tf.io.decode_jpeg(record["image"]).numpy().astype(np.float32)


def converted_in_time(seconds, *args, **kwargs):
    """convert_folder(...) in a thread, failing the test if it has not ended after `seconds`."""
    outcome = {}

    def run():
        try:
            outcome["report"] = convert.convert_folder(*args, **kwargs)
        except Exception as error:  # the test inspects it
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"convert_folder still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["report"]


# ---------------------------------------------------------------- pictures decoded as a viewer shows them

def test_pictures_reach_the_shards_as_a_viewer_shows_them(tmp_path, samples_dir):
    """EXIF turned upright, 16-bit and float mapped, NaN refused by name, tiny and twin photos noted."""
    root = photo_tree(tmp_path / "photos", samples_dir)
    exif_rotated_jpeg(root / "daisy" / "portrait.jpg")
    Image.fromarray(np.linspace(1000, 3000, 48 * 48).reshape(48, 48).astype(np.uint16)).save(root / "roses" / "deep.png")
    Image.fromarray(np.full((16, 16), np.nan, np.float32), mode="F").save(root / "roses" / "nan.tif")
    Image.new("RGB", (4, 6), (0, 150, 0)).save(root / "roses" / "tiny.png")
    shutil.copy(root / "daisy" / "0.jpg", root / "roses" / "copy_of_daisy.jpg")  # same bytes
    Image.open(root / "daisy" / "1.jpg").save(root / "daisy" / "1_as.png")  # same pixels, other bytes
    report = convert.convert_folder(str(root), str(tmp_path / "out"), image_size=SIZE, shards=1)
    records = {r["filename"].decode(): r for r in iter_records(report.shards)}
    upright = decoded(records["daisy/portrait.jpg"])
    assert upright[:12, :, 0].mean() > 200 and upright[-12:, :, 2].mean() > 200  # red on top, blue below
    deep = decoded(records["roses/deep.png"])
    assert deep.min() < 10 and deep.max() > 245  # not the all-white picture a plain conversion gave
    assert report.skipped == [(str(root / "roses" / "nan.tif"),
                               "every pixel of this F picture is NaN or infinite: there is nothing to show")]
    text = str(report)
    assert f"Note: '{root / 'roses' / 'tiny.png'}' is only 4x6 pixels, far smaller than the model's 32x32" in text
    assert f"Note: '{root / 'roses' / 'deep.png'}' is a I;16 picture (values 1000 to 3000)" in text
    assert (f"Note: '{root / 'roses' / 'copy_of_daisy.jpg'}' is the same photo as '{root / 'daisy' / '0.jpg'}' "
            "(same file contents); both were converted.") in text
    assert (f"Note: '{root / 'daisy' / '1_as.png'}' is the same photo as '{root / 'daisy' / '1.jpg'}' "
            "(same pixels); both were converted.") in text
    assert report.images == 9


def test_many_identical_photos_are_counted_after_the_first_ten(tmp_path, samples_dir):
    root = photo_tree(tmp_path / "photos", samples_dir, per_class=1)
    for index in range(12):
        shutil.copy(root / "daisy" / "0.jpg", root / "daisy" / f"copy_{index:02d}.jpg")
    report = convert.convert_folder(str(root), str(tmp_path / "out"), image_size=SIZE, shards=1)
    twins = [note for note in report.notes if "identical" in note or "same photo" in note]
    assert len(twins) == 11 and twins[-1] == "Note: 2 more pairs of identical photos."


def test_special_files_are_skipped_by_name_without_reading_them(tmp_path, samples_dir):
    """A FIFO, links to /dev/zero, to themselves and to a folder, a 30000x30000 PNG: skipped, quickly."""
    root = photo_tree(tmp_path / "photos", samples_dir)
    os.mkfifo(root / "daisy" / "pipe.jpg")
    os.symlink("/dev/zero", root / "daisy" / "zero.jpg")
    os.symlink(root / "roses" / "loop.jpg", root / "roses" / "loop.jpg")
    os.symlink(root, root / "roses" / "back_up")  # a folder link back up: followed, it would loop forever
    png_of_30000_squared(root / "roses" / "huge.png")
    report = converted_in_time(60, str(root), str(tmp_path / "out"), image_size=SIZE, shards=1)
    assert report.images == 4
    assert dict(report.skipped) == {
        str(root / "daisy" / "pipe.jpg"): "a FIFO (named pipe), not a regular file; it was not read",
        str(root / "daisy" / "zero.jpg"): "a character device, not a regular file; it was not read",
        str(root / "roses" / "loop.jpg"): "cannot be read: a symbolic link that loops back on itself",
        str(root / "roses" / "back_up"): convert.FOLDER_LINK,
        str(root / "roses" / "huge.png"): ("900 million pixels, more than the 89 million a picture may have "
                                           "(a decompression bomb, or a scan far larger than a photo): "
                                           "make it smaller first"),
    }
    assert leftovers(tmp_path / "out") == [os.path.basename(report.shards[0])]


# ---------------------------------------------------------------- sizes and paths refused before anything is written

def test_absurd_image_size_is_refused_before_anything(tmp_path, samples_dir):
    root = photo_tree(tmp_path / "photos", samples_dir)
    with pytest.raises(ConfigError) as caught:
        convert.convert_folder(str(root), str(tmp_path / "out"), image_size=100000)
    assert str(caught.value).startswith("image size 100000x100000 is too large: the largest that fits is 1024x1024")
    assert not (tmp_path / "out").exists()
    convert.convert_folder(str(root), str(tmp_path / "out"), image_size=MAX_IMAGE_SIZE, shards=1)


def test_output_under_a_regular_file(tmp_path, samples_dir):
    root = photo_tree(tmp_path / "photos", samples_dir)
    (tmp_path / "notes.txt").write_text("a file")
    output = tmp_path / "notes.txt" / "shards"
    with pytest.raises(DataError, match=f"cannot use '{output}' as the output folder: a part of that path is a file"):
        convert.convert_folder(str(root), str(output), image_size=SIZE)
    assert (tmp_path / "notes.txt").read_text() == "a file"


def test_photo_folder_that_is_a_symlink_loop(tmp_path):
    loop = tmp_path / "photos"
    os.symlink(loop, loop)
    with pytest.raises(DataError, match=f"photo folder '{loop}' is a symbolic link to nothing, or one that loops"):
        convert.convert_folder(str(loop), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- full and read-only file systems

def unshare_works() -> bool:
    """True when this machine lets a process mount a tmpfs in its own user and mount namespace."""
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


def convert_on_tmpfs(tmp_path, photos, mount_options, after_mount=""):
    """`convert` into <tmpfs>/shards, the tmpfs mounted with `mount_options`; (result, leftover names)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    script = (f'mount -t tmpfs -o {mount_options} tmpfs "$0" && {after_mount or "true"} && '
              f'"$@"; status=$?; echo "LEFT:$(ls -A "$0"/shards 2>/dev/null | tr "\\n" " ")"; exit $status')
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script, str(mount), sys.executable, "-m", "flowers_tl",
                             "convert", "--folder", str(photos), "--output", str(mount / "shards"),
                             "--image-size", "192", "--shards", "2"], capture_output=True, text=True, timeout=300)
    left = result.stdout.rsplit("LEFT:", 1)[1].split()
    return result, left, mount


def convert_with_file_size_limit(tmp_path, photos, limit):
    """`convert` whose process may write no file over `limit` bytes (RLIMIT_FSIZE): the kernel's EFBIG."""
    import resource

    output = tmp_path / "shards"
    result = subprocess.run([sys.executable, "-m", "flowers_tl", "convert", "--folder", str(photos), "--output",
                             str(output), "--image-size", "192", "--shards", "2"], capture_output=True, text=True,
                            timeout=300, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    return result, leftovers(output), tmp_path


def test_full_disk_during_convert(tmp_path, samples_dir):
    """A real 256 KB tmpfs fills up while shards are written: one line naming the folder, nothing left.

    Where no namespace can be made (some containers), the kernel's file size limit gives the same
    kind of failure at the same write: "File too large" instead of "No space left on device".
    """
    photos = photo_tree(tmp_path / "photos", samples_dir, per_class=20)
    if unshare_works():
        (result, left, mount), reason = convert_on_tmpfs(tmp_path, photos, "size=256k"), "No space left on device"
    else:
        (result, left, mount), reason = convert_with_file_size_limit(tmp_path, photos, 64 * 1024), "File too large"
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert (f"flowers-tl convert: error: cannot write the shards into '{mount / 'shards'}': {reason}. Nothing "
            "was written there (its temporary files were removed)") in result.stderr
    assert left == []


@pytest.mark.skipif(not unshare_works() and os.geteuid() == 0,
                    reason="root writes into any folder: a read-only one needs `unshare -rm` to mount it")
def test_read_only_output_folder(tmp_path, samples_dir):
    """A real read-only tmpfs (or, without namespaces, a folder without write permission)."""
    photos = photo_tree(tmp_path / "photos", samples_dir)
    if unshare_works():
        result, left, mount = convert_on_tmpfs(tmp_path, photos, "size=1m",
                                               after_mount='mkdir "$0"/shards && mount -o remount,ro "$0"')
        reason = "Read-only file system"
    else:
        mount = tmp_path
        (tmp_path / "shards").mkdir()
        (tmp_path / "shards").chmod(0o555)
        result = subprocess.run([sys.executable, "-m", "flowers_tl", "convert", "--folder", str(photos), "--output",
                                 str(tmp_path / "shards")], capture_output=True, text=True, timeout=300)
        left, reason = leftovers(tmp_path / "shards"), "Permission denied"
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert (f"flowers-tl convert: error: cannot use '{mount / 'shards'}' as the output folder: it is not writable "
            f"({reason}). Give the path of a folder you can write to") in result.stderr
    assert left == []


# ---------------------------------------------------------------- interruptions and two runs at once

@pytest.fixture(scope="module")
def many_photos(tmp_path_factory, samples_dir):
    """400 different photos in 2 classes: a conversion at 192 pixels that lasts some seconds."""
    return photo_tree(tmp_path_factory.mktemp("many"), samples_dir, per_class=200, side=256)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_convert_removes_its_temporary_files_and_says_how_far(tmp_path, many_photos, stop):
    output = tmp_path / "out"
    process = run_convert("--folder", many_photos, "--output", output, "--image-size", 192, "--shards", 8)
    wait_for(str(output / ".partial-*-1.tfrec.tmp"), process)  # one shard done, the next one begun
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("flowers-tl convert: interrupted: stopped after ") and "Traceback" not in stderr
    done = int(line.split("stopped after ")[1].split()[0])
    assert 50 <= done < 400 and f"{done} of 400 photos; nothing was written to '{output}'" in line
    assert leftovers(output) == []


def test_next_run_removes_what_a_killed_run_left(tmp_path, many_photos):
    """SIGKILL leaves temporary shards and the lock; the next run removes both, says so, and converts."""
    output = tmp_path / "out"
    process = run_convert("--folder", many_photos, "--output", output, "--image-size", 192, "--shards", 8)
    wait_for(str(output / ".partial-*-1.tfrec.tmp"), process)
    process.kill()
    process.communicate()
    stale = [name for name in leftovers(output) if name.startswith(".partial-")]
    assert stale and files.LOCK_NAME in leftovers(output)
    report = convert.convert_folder(str(many_photos), str(output), image_size=SIZE, shards=2)
    removed = "file" if len(stale) == 1 else "files"
    assert f"Note: removed {len(stale)} temporary {removed} left in '{output}' by an interrupted conversion." in str(report)
    assert leftovers(output) == sorted(os.path.basename(shard) for shard in report.shards)
    assert report.images == 400


def test_second_convert_into_the_same_output_is_refused_by_name(tmp_path, many_photos):
    """Run A holds the output (paused with SIGSTOP mid-write); run B is refused; A then ends whole."""
    output = tmp_path / "out"
    first = run_convert("--folder", many_photos, "--output", output, "--image-size", 96, "--shards", 4)
    try:
        wait_for(str(output / ".partial-*-0.tfrec.tmp"), first)
        first.send_signal(signal.SIGSTOP)
        second = run_convert("--folder", many_photos, "--output", output, "--image-size", 96, "--shards", 4)
        _, stderr = second.communicate(timeout=120)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 1 and "Traceback" not in stderr
    assert stderr.strip() == (f"flowers-tl convert: error: '{output}' is being written by another run (process "
                              f"{first.pid}, lock file '{output / files.LOCK_NAME}'): wait for it to finish or "
                              f"stop it (kill {first.pid}), or choose another output folder.")
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert "400/400" in stderr  # the progress bar's last line (Keras' Progbar, one plain line into a pipe)
    shards = sorted(glob.glob(str(output / "*.tfrec")))
    assert len(shards) == 4 and data.count_images(shards) == 400
    assert sum(data.count_records(shard) for shard in shards) == 400  # no record written twice
    assert leftovers(output) == [os.path.basename(shard) for shard in shards]
    with pytest.raises(OutputExistsError, match="already holds 4 .tfrec file"):  # then the old guard answers
        convert.convert_folder(str(many_photos), str(output), image_size=SIZE)


def test_two_converts_started_together_write_every_photo_once(tmp_path, many_photos):
    """The issue's case: two runs at once used to leave 8 shards with every record twice."""
    output = tmp_path / "out"
    runs = [run_convert("--folder", many_photos, "--output", output, "--image-size", 64, "--shards", 4)
            for _ in range(2)]
    outcomes = sorted((run.communicate(timeout=300)[1], run.returncode)[::-1] for run in runs)
    assert [code for code, _ in outcomes] == [0, 1], outcomes
    refusal = outcomes[1][1].strip()
    assert ("is being written by another run" in refusal  # the two overlapped: the claim refused one
            or "already holds 4 .tfrec files" in refusal), refusal  # one ended before the other looked
    shards = sorted(glob.glob(str(output / "*.tfrec")))
    assert len(shards) == 4 and sum(data.count_records(shard) for shard in shards) == 400


# ---------------------------------------------------------------- a device given as a shard

def test_dev_zero_as_a_shard_says_it_is_not_a_tfrecord_file():
    assert data.find_bad_record(["/dev/zero"]) == (
        "shard '/dev/zero' is not a TFRecord file: its first record cannot be read (corrupted record at 0 (Is "
        "this even a TFRecord file?)). Use shards made by `flowers-tl convert`, or remove it from the pattern.")


# ---------------------------------------------------------------- the same files given to predict

def test_predict_names_each_unusable_file_and_goes_on(tmp_path, samples_dir):
    """`flowers-tl predict` over a FIFO, /dev/zero, a loop, a bomb, a tiny and a good photo: no hang."""
    from flowers_tl import model as flowers_model

    model_path = tmp_path / "model.keras"
    flowers_model.compile_model(flowers_model.build_model(32, weights="none")).save(model_path)
    good = tmp_path / "good.jpg"
    shutil.copy(next(samples_dir.glob("daisy__*.jpg")), good)
    Image.new("RGB", (4, 6), (0, 150, 0)).save(tmp_path / "tiny.png")
    os.mkfifo(tmp_path / "pipe.jpg")
    os.symlink("/dev/zero", tmp_path / "zero.jpg")
    os.symlink(tmp_path / "loop.jpg", tmp_path / "loop.jpg")
    png_of_30000_squared(tmp_path / "huge.png")
    bad = {"pipe.jpg": "a FIFO (named pipe), not a regular file", "zero.jpg": "a character device, not a regular file",
           "loop.jpg": "cannot be read: a symbolic link that loops back on itself",
           "huge.png": "900 million pixels, more than the 89 million"}
    paths = [str(tmp_path / name) for name in ("pipe.jpg", "zero.jpg", "good.jpg", "loop.jpg", "huge.png", "tiny.png")]
    result = subprocess.run([sys.executable, "-m", "flowers_tl", "predict", str(model_path), *paths],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    for name, reason in bad.items():
        assert f"flowers-tl predict: skipped: '{tmp_path / name}': {reason}" in result.stderr
    answers = [line.split(": ")[0] for line in result.stdout.splitlines() if line.endswith("%)")]
    assert answers == [str(good), str(tmp_path / "tiny.png")]  # the files after the bad ones still answered
    assert (f"Note: '{tmp_path / 'tiny.png'}' is only 4x6 pixels, far smaller than the model's 32x32 input"
            in result.stderr)  # a note: stdout holds the answers alone
