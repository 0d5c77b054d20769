"""`flowers-tl train` runs that meet the real world: a second run into the same folder, SIGTERM and
SIGINT (also in a background job), a run that failed before its first checkpoint, a resume with
other data or weights, a link planted at the log, and a model evaluated on the shards it learned from.

Everything is real: the command in a subprocess, real signals, real links, tiny real trainings
(32 px, 4 little shards, random or real MobileNetV2 weights) that take seconds.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import jpeg_bytes, write_shard
from flowers_tl.tool import cli, files
from test_bad_inputs import assert_clean_error, run_cli, small_shards

TINY = ["--image-size", "32", "--batch-size", "8", "--validation-shards", "1", "--seed", "1"]


def start_train(pattern, output, *extra, env=None, ignore_sigint=False):
    """A long tiny `train` in the background (1000 epochs: it runs until stopped)."""
    environment = dict(os.environ, **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "flowers_tl", "train", "--data", pattern, *TINY, "--epochs", "1000",
         "--output", str(output), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=environment, preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None)


def wait_for_checkpoint(output, process, timeout=180):
    """Wait until the run's backup holds a finished epoch."""
    deadline = time.monotonic() + timeout
    while not (output / "backup" / "training_metadata.json").exists():
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no epoch finished in time"
        time.sleep(0.05)


@pytest.mark.parametrize("signum, background", [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["sigterm", "sigint-in-a-background-job"])
def test_a_stopped_train_exits_130_with_one_line_and_no_temporary_file(tmp_path, signum, background):
    pattern = small_shards(str(tmp_path / "shards"))
    output = tmp_path / "run"
    process = start_train(pattern, output, "--weights", "none", ignore_sigint=background)
    wait_for_checkpoint(output, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == (
        f"flowers-tl train: interrupted: stopped by {signal.Signals(signum).name}; run the same command again "
        f"to resume from '{output / 'backup'}'.")
    assert not [name for name in os.listdir(output) if name.startswith(".")]  # no .partial-…, no lock


def test_a_second_train_into_a_live_run_is_refused_by_name_and_the_next_resumes(tmp_path, weights_path):
    """Run A trains; run B into the same folder is refused by name; A is stopped; a run with other
    weights (FLOWERS_TL_WEIGHTS=none) is refused by name; the same inputs resume and remove the
    temporary file a killed save left."""
    pattern = small_shards(str(tmp_path / "shards"))
    output = tmp_path / "run"
    first = start_train(pattern, output, env={"FLOWERS_TL_WEIGHTS": weights_path})
    try:
        wait_for_checkpoint(output, first)
        second = run_cli("train", "--data", pattern, *TINY, "--epochs", "2", "--output", str(output),
                         env={"FLOWERS_TL_WEIGHTS": weights_path})
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert_clean_error(second, "train", f"'{output}' is being written by another run (process {first.pid}, lock "
                                        f"file '{output / files.LOCK_NAME}'): wait for it to finish or stop it")
    assert first.returncode == 130 and (output / "backup").is_dir()

    other_weights = run_cli("train", "--data", pattern, *TINY, "--epochs", "1000", "--output", str(output),
                            env={"FLOWERS_TL_WEIGHTS": "none"})
    assert_clean_error(other_weights, "train", f"'{output / 'backup'}' holds an interrupted run made with other "
                                               "weights (FLOWERS_TL_WEIGHTS, --weights); run the same command again")

    (output / ".partial-999-model.keras.1a2b.keras").write_bytes(b"half a model")  # as a killed save leaves it
    resumed = run_cli("train", "--data", pattern, *TINY, "--epochs", "3", "--output", str(output),
                      env={"FLOWERS_TL_WEIGHTS": weights_path})  # fewer epochs than done: ends at once
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming the interrupted run" in resumed.stderr
    assert sorted(os.listdir(output)) == ["curves.png", "history.json", "metrics.json", "model.keras",
                                          "training_log.csv"]


def test_a_run_that_fails_before_its_first_checkpoint_blocks_nothing(tmp_path):
    """A bad record found in the feature pass used to leave a backup/ with no checkpoint, and the
    corrected command was refused as "an interrupted run made with other data"."""
    good = small_shards(str(tmp_path / "good"))
    bad = tmp_path / "bad"
    small_shards(str(bad))
    write_shard(bad / "flowers04-2.tfrec", [{"image": b"not a jpeg", "class": 0}, {"image": jpeg_bytes(), "class": 1}])
    output = tmp_path / "run"
    failed = run_cli("train", "--data", str(bad / "*.tfrec"), *TINY, "--weights", "none", "--epochs", "1",
                     "--output", str(output))
    assert_clean_error(failed, "train", "flowers04-2.tfrec")
    assert not (output / "backup").exists()
    (output / "backup").mkdir(parents=True)
    (output / "backup" / "settings.json").write_text("{}")  # what a run killed before its first epoch leaves
    corrected = run_cli("train", "--data", good, *TINY, "--weights", "none", "--epochs", "1", "--output", str(output))
    assert corrected.returncode == 0, corrected.stderr[-3000:]


def test_links_planted_at_the_log_and_the_backup_are_replaced_not_followed(tmp_path, capsys):
    pattern = small_shards(str(tmp_path / "shards"))
    output = tmp_path / "run"
    output.mkdir()
    outside = tmp_path / "outside.csv"
    os.symlink(outside, output / "training_log.csv")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", output / "backup")  # Keras would write its checkpoints through it
    assert cli.main(["train", "--data", pattern, *TINY, "--weights", "none", "--epochs", "2",
                     "--output", str(output)]) == 0
    assert not os.path.lexists(outside) and os.listdir(tmp_path / "elsewhere") == []
    log = output / "training_log.csv"
    assert not log.is_symlink() and log.read_text().splitlines()[0].split(",")[0] == "epoch"
    assert len(log.read_text().splitlines()) == 3  # a header and two epochs


def test_the_model_knows_its_shards_and_evaluate_refuses_its_training_photos(tmp_path, capsys):
    pattern = small_shards(str(tmp_path / "shards"))
    output = tmp_path / "run"
    assert cli.main(["train", "--data", pattern, *TINY, "--weights", "none", "--epochs", "1",
                     "--output", str(output)]) == 0
    model = str(output / "model.keras")
    capsys.readouterr()
    assert cli.main(["evaluate", model, "--data", pattern, "--validation-shards", "1"]) == 0  # as trained
    assert cli.main(["evaluate", model, "--data", pattern, "--validation-shards", "3"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (f"flowers-tl evaluate: error: model '{model}' was trained on 2 of the 3 shards it was asked "
                     f"to score (flowers01-4.tfrec ({os.path.getsize(tmp_path / 'shards' / 'flowers01-4.tfrec')} "
                     f"bytes), flowers02-4.tfrec ({os.path.getsize(tmp_path / 'shards' / 'flowers02-4.tfrec')} "
                     "bytes)), so its accuracy there would be too high: score the shards it was validated on "
                     f"(flowers00-4.tfrec ({os.path.getsize(tmp_path / 'shards' / 'flowers00-4.tfrec')} bytes)), "
                     "with the --data and --validation-shards it was trained with, or pass --all-shards to score "
                     "every shard knowingly.")
    assert cli.main(["evaluate", model, "--data", pattern, "--all-shards", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["images"] == 16
    assert f"Warning: model '{model}' was trained on 3 of these 4 shards (" in captured.err


def test_shard_names_that_lie_about_their_counts_change_no_number(tmp_path, capsys):
    """`photos-20000000.tfrec` was refused as needing 1717 GiB; `flowers99-99999.tfrec` gave
    training_images 100653 in metrics.json. Both hold 4 records."""
    folder = tmp_path / "shards"
    small_shards(str(folder), count=2)
    for name in ("flowers99-99999.tfrec", "photos-20000000.tfrec"):
        write_shard(folder / name, [{"image": jpeg_bytes(color=(9, i * 60, 90)), "class": i} for i in range(4)])
    assert cli.main(["train", "--data", str(folder / "*.tfrec"), *TINY, "--weights", "none", "--no-fast",
                     "--epochs", "1", "--output", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["validation_images"], metrics["training_images"]) == (4, 12)


def test_a_huge_jpeg_inside_a_record_is_refused_before_it_is_decoded(tmp_path):
    """A real 12000x12000 JPEG (144 million pixels; decoded, 432 MB) in record 2 of a shard."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (12000, 12000), 128).save(buffer, format="JPEG")
    folder = tmp_path / "shards"
    small_shards(str(folder), count=2)
    write_shard(folder / "flowers02-3.tfrec", [{"image": jpeg_bytes(), "class": 0},
                                                {"image": buffer.getvalue(), "class": 1},
                                                {"image": jpeg_bytes(), "class": 2}])
    result = run_cli("train", "--data", str(folder / "*.tfrec"), *TINY, "--weights", "none", "--epochs", "1",
                     "--output", str(tmp_path / "run"))
    assert_clean_error(result, "train", f"record 2 of shard '{folder / 'flowers02-3.tfrec'}' is not a valid flowers "
                                        "record: 144000000 pixels, more than the 89 million a picture may have")


def test_a_memory_limit_set_with_ulimit_v_is_read(tmp_path):
    """Under a real 4 GiB RLIMIT_AS (`ulimit -v`, `prlimit --as`), on a machine with more free memory,
    a batch that cannot fit is refused with a message (it used to end in a segmentation fault)."""
    import resource

    limit = 4 * 2**30
    pattern = small_shards(str(tmp_path / "shards"))
    result = subprocess.run(
        [sys.executable, "-m", "flowers_tl", "train", "--data", pattern, "--validation-shards", "1", "--weights",
         "none", "--no-fast", "--image-size", "224", "--batch-size", "256", "--output", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    assert_clean_error(result, "train", "training at 224x224 with 256 photos per step needs about 4.8 GiB of memory, "
                                        "and ", " GiB is available: use --batch-size ")
    available = float(result.stderr.split("GiB of memory, and ")[1].split(" GiB")[0])
    assert available < 4
    assert not (tmp_path / "run").exists()


def test_a_link_found_at_the_log_of_a_resumed_run_is_refused_by_name(tmp_path):
    from flowers_tl.tool import runs
    from flowers_tl.errors import DataError

    victim = tmp_path / "victim.csv"
    victim.write_text("precious\n")
    os.symlink(victim, tmp_path / "training_log.csv")
    with pytest.raises(DataError) as refused:
        runs.CSVLog(str(tmp_path / "training_log.csv")).on_epoch_end(3, {"loss": 0.5})
    assert str(refused.value) == (f"'{tmp_path / 'training_log.csv'}' is a symbolic link; flowers-tl never writes "
                                  "through one: remove it, then run the same command again.")
    assert victim.read_text() == "precious\n"


def test_the_log_continues_the_rows_a_resumed_run_finds(tmp_path):
    from flowers_tl.tool import runs

    log = runs.CSVLog(str(tmp_path / "training_log.csv"))
    log.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.25})
    runs.CSVLog(str(tmp_path / "training_log.csv")).on_epoch_end(1, {"loss": 0.25, "accuracy": 0.5})
    assert (tmp_path / "training_log.csv").read_text() == "epoch,accuracy,loss\n0,0.25,0.5\n1,0.5,0.25\n"
    assert cli._history_from_log(str(tmp_path / "training_log.csv")) == {"accuracy": [0.25, 0.5], "loss": [0.5, 0.25]}
