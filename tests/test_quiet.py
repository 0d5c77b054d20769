"""No log walls: the learner sees only what the course prints.

The solution notebooks run in quick mode (as in test_notebooks.py) with nbclient, and every
output is searched for TensorFlow, absl and Keras log lines and Python warnings.
"""

import os
import re
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from test_notebooks import NOTEBOOK_TIMEOUT_S, REPO

LOG_LINE = re.compile(
    r"^[IWEF]\d{4} |WARNING|Warning:|UserWarning|DeprecationWarning|oneDNN|cuInit|absl|cuda"
    r"|Skipping variable loading|retracing|ran out of data", re.MULTILINE)


def noise(text: str) -> list:
    """The lines of `text` that look like a log line or a warning."""
    return [line for line in text.splitlines() if LOG_LINE.search(line)]


def output_text(output) -> str:
    """The text a learner reads in one cell output (stream, result or error)."""
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return "\n".join(output.traceback)
    return output.get("data", {}).get("text/plain", "")


def test_noise_finds_log_lines_and_warnings():
    text = ("Epoch 1/1\nW0000 00:00:1.0 cuda_platform.cc:52] failed call to cuInit\n"
            "/x.py:3: UserWarning: Skipping variable loading for optimizer 'adam'\naccuracy 0.9\n")
    assert noise(text) == text.splitlines()[1:3]


@pytest.mark.parametrize("path", ["notebooks/flowers_tl_solution.ipynb", "notebooks/ru/flowers_tl_solution.ipynb"])
def test_solution_notebook_runs_without_log_lines(path, tmp_path, monkeypatch, capfd, real_data_pattern,
                                                  weights_path):
    """Each solution notebook runs to the end, and no cell shows stderr, a log line or a warning.

    C++ lines go to the kernel's own stderr (`capfd` here), which Colab shows in the cell too;
    only the test's own kernel launcher line ("[IPKernelApp] ...") is left out."""
    for name, value in {"FLOWERS_TL_FAST": "1", "MPLBACKEND": "Agg", "KERAS_BACKEND": "tensorflow"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)  # as on Colab: the package's own default
    run_without_log_lines(REPO / path, tmp_path, capfd)


def run_without_log_lines(path, folder, capfd):
    """Run the notebook at `path` in `folder` to the end (a real kernel); assert that no cell shows stderr, a
    log line or a warning, and no C++ line reached the kernel's own stderr; return the run notebook."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=NOTEBOOK_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = output_text(output)
            if output.get("name") == "stderr":
                found.append(f"[{cell.id}] stderr: {text.strip()[:300]}")
            found += [f"[{cell.id}] {line[:300]}" for line in noise(text)]
    found += [f"[kernel stderr] {line[:300]}" for line in noise(capfd.readouterr().err)
              if not line.startswith("[IPKernelApp]")]
    assert not found, "\n".join(dict.fromkeys(found))
    return notebook


def test_help_prints_no_log_line():
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-m", "flowers_tl", "--help"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0 and "usage: flowers-tl" in result.stdout
    assert result.stderr == "" and not noise(result.stdout)


def test_a_users_own_log_level_wins():
    code = "import flowers_tl, os; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert result.stdout.strip() == "0"


IMPORT_CHANGES_NOTHING = """
import os, sys, warnings
import keras, matplotlib.figure, tensorflow  # their own import-time settings are theirs, not the package's
before = (list(sys.meta_path), list(warnings.filters), dict(os.environ), sys.excepthook)
import flowers_tl, flowers_tl.exercises, flowers_tl.plots, flowers_tl.training
after = (list(sys.meta_path), list(warnings.filters), dict(os.environ), sys.excepthook)
print([name for name, old, new in zip(("meta_path", "warnings", "environment", "excepthook"), before, after)
       if old != new])
"""


def test_importing_the_package_changes_nothing():
    """No import hook, warning filter, environment variable or exception hook: a script or test that only
    imports flowers_tl (and its notebook modules) keeps its own settings."""
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", IMPORT_CHANGES_NOTHING], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


SET_UP_IN_A_KERNEL = """
import os, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
import flowers_tl as ftl
custom_before = shell.custom_exceptions
ftl.setup_notebook(language="ru")
print("custom:", custom_before == () and KeyboardInterrupt in shell.custom_exceptions)
print("level:", os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
print("hook:", any(type(finder).__name__ == "_QuietTensorFlowFinder" for finder in sys.meta_path))
"""


def test_setup_notebook_does_what_it_says_in_one_line():
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", SET_UP_IN_A_KERNEL], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("flowers_tl ") and "сообщения на русском" in lines[0]  # its one line, in Russian
    assert lines[1:] == ["custom: True", "level: 3", "hook: True"]


def test_the_stop_button_gives_one_short_sentence(tmp_path):
    """A real kernel interrupted in the middle of a cell: one sentence, not a KeyboardInterrupt traceback."""
    import time

    from jupyter_client.manager import start_new_kernel

    from flowers_tl import learner_errors

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        client.execute_interactive("import flowers_tl as ftl\nftl.setup_notebook()", timeout=120)
        client.execute("import time\nfor second in range(120):\n    time.sleep(1)")
        time.sleep(3)
        manager.interrupt_kernel()
        errors = []
        deadline = time.time() + 60
        while time.time() < deadline:
            message = client.get_iopub_msg(timeout=60)
            if message["msg_type"] == "error":
                errors.append(message["content"])
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert len(errors) == 1 and errors[0]["traceback"] == [learner_errors.STOPPED]
