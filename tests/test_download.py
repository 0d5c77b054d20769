"""`flowers-tl download`: the shards and weights copied once for offline work, whole, and never through a link."""

import os
import subprocess
import sys
import time

from flowers_tl import data
from flowers_tl.tool import download

WEIGHTS_NAME = download.WEIGHTS_FILE


def flowers_tl(*arguments, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "flowers_tl", *arguments], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "FLOWERS_TL_OFFLINE": "1", **(env or {})}, timeout=300)


def test_offline_it_names_what_it_cannot_fetch_in_seconds(tmp_path):
    start = time.monotonic()
    result = flowers_tl("download", "--output", str(tmp_path / "copy"), cwd=tmp_path)
    assert time.monotonic() - start < 30
    assert result.returncode == 1 and result.stdout == ""
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("flowers-tl download: error: offline:")
    assert data.DEFAULT_DATA_PATTERN in error and download.WEIGHTS_URL in error
    assert not (tmp_path / "copy").exists()


def test_a_local_copy_is_whole_and_the_exports_point_at_it(tmp_path, real_data_pattern, weights_path):
    copy = tmp_path / "copy"
    result = flowers_tl("download", "--output", str(copy), "--data", real_data_pattern, "--weights", weights_path,
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    exports = dict(line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines())
    pattern, weights = exports["FLOWERS_TL_DATA"].strip('"'), exports["FLOWERS_TL_WEIGHTS"].strip('"')
    originals = data.list_shards(real_data_pattern)
    copied = data.list_shards(pattern)
    assert [os.path.basename(shard) for shard in copied] == [os.path.basename(shard) for shard in originals]
    assert data.count_images(copied) == data.count_images(originals)
    assert open(weights, "rb").read() == open(weights_path, "rb").read()
    assert f"Copied {len(originals)} shards into" in result.stderr
    again = flowers_tl("download", "--output", str(copy), "--data", real_data_pattern, "--weights", weights_path,
                       cwd=tmp_path)
    assert again.returncode == 0 and f"Copied 0 shards into '{copy}' ({len(originals)} already there)" in again.stderr


def test_a_link_in_the_output_folder_is_replaced_not_written_through(tmp_path, real_data_pattern, weights_path):
    copy, elsewhere = tmp_path / "copy", tmp_path / "elsewhere.h5"
    copy.mkdir()
    elsewhere.write_bytes(b"not to be overwritten")
    os.symlink(elsewhere, copy / os.path.basename(weights_path))
    result = flowers_tl("download", "--output", str(copy), "--data", real_data_pattern, "--weights", weights_path,
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert elsewhere.read_bytes() == b"not to be overwritten"
    assert not os.path.islink(copy / os.path.basename(weights_path))
