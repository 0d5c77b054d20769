"""No log walls: the learner sees only what the course prints (issue 13, item 4).

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
    notebook = nbformat.read(REPO / path, as_version=4)
    NotebookClient(notebook, timeout=NOTEBOOK_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
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
