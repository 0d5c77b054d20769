"""What a hostile file system or model file cannot do: locks that outlive their process, links
planted where the tool writes, and `.keras` files whose layers would run code.

Everything is real: lock files and links on disk, a second process holding a lock, and a real
SavedModel whose serving function writes a file, wrapped in a real `TFSMLayer`.
"""

import os
import subprocess
import sys

import pytest

from flowers_tl import files
from flowers_tl.errors import OutputExistsError


# ---------------------------------------------------------------- locks die with their process

@pytest.mark.parametrize("pid", ["1", "own"], ids=["pid-1", "own-pid"])
def test_a_lock_file_left_with_a_live_pid_does_not_block(tmp_path, pid):
    """A killed run's lock file names a process id that lives again (pid 1 in a container, our own)."""
    (tmp_path / files.LOCK_NAME).write_text(f"{os.getpid() if pid == 'own' else pid}\n")
    with files.OutputClaim(str(tmp_path)):
        assert (tmp_path / files.LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / files.LOCK_NAME).exists()


def test_a_live_claim_is_refused_with_its_remedy(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from flowers_tl import files\n"
         f"with files.OutputClaim({str(tmp_path)!r}):\n print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputExistsError) as refused:
            files.OutputClaim(str(tmp_path)).__enter__()
    finally:
        holder.kill()
        holder.wait()
    assert str(refused.value) == (f"'{tmp_path}' is being written by another run (process {holder.pid}, lock file "
                                  f"'{tmp_path / files.LOCK_NAME}'): wait for it to finish or stop it "
                                  f"(kill {holder.pid}), or choose another output folder.")
    with files.OutputClaim(str(tmp_path)):  # the holder was killed: its lock went with it
        pass


# ---------------------------------------------------------------- no write through a link

def test_the_safe_writer_replaces_a_planted_link_and_never_writes_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.symlink(victim, tmp_path / "out.png")
    os.symlink(tmp_path / "nowhere.txt", tmp_path / "log.csv")  # dangling
    files.write_text_atomically(str(tmp_path / "out.png"), "new")
    files.write_text_atomically(str(tmp_path / "log.csv"), "new")
    assert victim.read_text() == "precious\n" and not (tmp_path / "nowhere.txt").exists()
    for name in ("out.png", "log.csv"):
        assert not (tmp_path / name).is_symlink() and (tmp_path / name).read_text() == "new\n"
    assert sorted(os.listdir(tmp_path)) == ["log.csv", "out.png", "victim.txt"]  # no temporary file left
