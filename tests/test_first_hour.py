"""A new user's first hour: tests that run away from this machine, quiet and light
commands, clear exit codes, an install cell that installs, and the house's conventions.

Every test here is fast (seconds): real subprocesses, no training.
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import nbformat
import pytest

from flowers_tl import __version__
from flowers_tl.tool import cli

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(str(path.relative_to(REPO)) for path in (REPO / "notebooks").rglob("*.ipynb"))
INSTALL_SPEC = re.compile(r"flowers_tl @ git\+https://github\.com/[\w.-]+/[\w.-]+@([\w./-]+)\"")


def run(*arguments, env=None, cwd=REPO, timeout=120):
    """A subprocess with this repository's package first on the path, in a new user's environment (no
    TF_CPP_MIN_LOG_LEVEL of the test suite's own: the package's quiet default applies); (code, stdout, stderr)."""
    environment = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(PYTHONPATH=str(REPO), **(env or {}))
    result = subprocess.run(list(arguments), capture_output=True, text=True, env=environment, cwd=cwd,
                            timeout=timeout)
    return result.returncode, result.stdout, result.stderr


def flowers_tl(*arguments, env=None):
    return run(sys.executable, "-m", "flowers_tl", *arguments, env=env)


# ---------------------------------------------------------------- tests away from ../shared

TINY_TESTS = '''
def test_needs_real_data(real_data_pattern):
    assert real_data_pattern

def test_needs_nothing():
    assert 1 + 1 == 2
'''


@pytest.fixture
def lone_clone(tmp_path):
    """A folder holding only this repository's conftest.py and a tiny test file: no ../shared beside it."""
    tests = tmp_path / "clone" / "tests"
    tests.mkdir(parents=True)
    shutil.copy(REPO / "tests" / "conftest.py", tests / "conftest.py")
    (tests / "test_tiny.py").write_text(TINY_TESTS)
    assert not (tmp_path / "shared").exists()
    return tests


NOWHERE = {"FLOWERS_TL_DATA": "/nowhere/*.tfrec", "FLOWERS_TL_WEIGHTS": "/nowhere/weights.h5",
           "FLOWERS_TL_OFFLINE": "1", "FLOWERS_TL_REQUIRE_DATA": "",
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # the tiny run needs none of the suite's plugins


def test_without_data_real_data_tests_are_skipped_with_one_reason(lone_clone):
    code, out, err = run(sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", str(lone_clone),
                         env=NOWHERE, cwd=lone_clone)
    assert code == 0, out + err
    assert "1 passed, 1 skipped" in out, out
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1, out
    assert "FLOWERS_TL_DATA" in skipped[0] and "FLOWERS_TL_WEIGHTS" in skipped[0] and "offline" in skipped[0]
    summary = [line for line in out.splitlines() if "that need the real data were skipped" in line]
    assert len(summary) == 1 and summary[0].startswith("1 test(s)") and "FLOWERS_TL_WEIGHTS" in summary[0], out


def test_ci_turns_missing_data_into_a_failure(lone_clone):
    code, out, err = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(lone_clone),
                         env={**NOWHERE, "FLOWERS_TL_REQUIRE_DATA": "1"}, cwd=lone_clone)
    assert code == 1, out + err
    assert "1 passed, 1 error" in out, out
    assert "FLOWERS_TL_REQUIRE_DATA is set and there is no real flowers data" in out


def test_ci_requires_the_real_data():
    assert re.search(r"^export FLOWERS_TL_REQUIRE_DATA=1$", (REPO / ".ci" / "run").read_text(), re.MULTILINE)


# ---------------------------------------------------------------- offline, in seconds

def test_train_offline_without_data_names_both_variables_in_seconds(tmp_path):
    """The README's first command on a machine without network or data: one line, in seconds."""
    env = {"FLOWERS_TL_OFFLINE": "1", "FLOWERS_TL_DATA": "", "FLOWERS_TL_CACHE": str(tmp_path / "cache"),
           "TFDS_DATA_DIR": str(tmp_path / "tfds")}
    started = time.monotonic()
    code, out, err = flowers_tl("train", "--output", str(tmp_path / "run"), env=env)
    elapsed = time.monotonic() - started
    assert code == cli.RUNTIME_ERROR and "Traceback" not in err, err
    assert "Note: the course bucket gs://flowers-public" in err and out == ""
    lines = err.strip().splitlines()  # the accelerator, the note and the error: no log line
    assert len(lines) == 3 and lines[0].startswith("Running on "), err
    last = err.strip().splitlines()[-1]
    assert last.startswith("flowers-tl train: error: could not load tensorflow-datasets' tf_flowers: you are "
                           "offline"), last
    assert "FLOWERS_TL_DATA" in last and "FLOWERS_TL_WEIGHTS" in last
    assert elapsed < 60, f"{elapsed:.0f} s"  # TensorFlow's import is most of it; tfds retried for 3.5 min
    assert not (tmp_path / "run" / "model.keras").exists()


def test_the_network_probe_answers_in_seconds():
    """`online.is_online` on this machine, as it is (online or not): an answer within its timeout."""
    code, out, err = run(sys.executable, "-c", "import time; from flowers_tl import online; t = time.monotonic(); "
                         "print(online.is_online(), online.is_online(), round(time.monotonic() - t, 2))",
                         env={"FLOWERS_TL_OFFLINE": ""})
    assert code == 0, err
    first, second, seconds = out.split()
    assert first == second and float(seconds) <= 3.5  # asked once: the second answer is the kept one


# ---------------------------------------------------------------- light and quiet commands

def test_importing_the_cli_costs_neither_tensorflow_nor_matplotlib():
    code, out, err = run(sys.executable, "-c", "import sys, flowers_tl, flowers_tl.tool.cli; "
                         "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))")
    assert code == 0 and out.strip() == "[]", out + err


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_need_no_tensorflow_even_with_a_broken_keras_backend(option):
    code, out, err = run(sys.executable, "-c", f"import sys; from flowers_tl.tool import cli\n"
                         f"try:\n    cli.main(['{option}'])\nexcept SystemExit as end:\n    code = end.code\n"
                         "print('tensorflow' in sys.modules, code)", env={"KERAS_BACKEND": "nonsense"})
    assert err == "" and out.strip().endswith("False 0"), out + err
    if option == "--version":
        assert out.startswith(f"flowers-tl {__version__}\n")


def test_lazy_package_keeps_the_course_names():
    code, out, err = run(sys.executable, "-c", "import flowers_tl as ftl; names = dir(ftl); "
                         "print(all(n in names for n in ('train', 'split_shards', 'build_model', 'data', 'CLASSES'))); "
                         "print(ftl.data.CLASSES is ftl.CLASSES, callable(ftl.train))")
    assert code == 0 and out.split() == ["True", "True", "True"], out + err


@pytest.mark.parametrize("backend", ["nonsense", "missing"])
def test_a_keras_backend_that_does_not_exist_or_is_not_installed_is_one_line(backend):
    if backend == "missing":
        import importlib.util

        absent = [name for name, package in cli.KERAS_BACKENDS.items() if importlib.util.find_spec(package) is None]
        assert absent, "every Keras backend is installed here: nothing to test"
        backend = absent[0]
    code, out, err = flowers_tl("info", env={"KERAS_BACKEND": backend})
    assert code == cli.RUNTIME_ERROR and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"flowers-tl info: error: KERAS_BACKEND='{backend}'"), err


def test_info_prints_no_tensorflow_start_up_line():
    code, out, err = flowers_tl("info")
    assert code == 0 and err == "", err
    assert "Running on" in out


def test_runtime_errors_exit_1_and_usage_errors_exit_2(tmp_path):
    code, _, err = flowers_tl("convert", "--folder", str(tmp_path / "none"), "--output", str(tmp_path / "out"))
    assert code == 1 and err.startswith("flowers-tl convert: error: photo folder"), err
    code, _, err = flowers_tl("train", "--epochs", "many")
    assert code == 2 and "invalid int value" in err


def test_every_option_has_help():
    import argparse

    parsers = [cli._parser()]
    parsers += [p for action in parsers[0]._actions if isinstance(action, argparse._SubParsersAction)
                for p in action.choices.values()]
    missing = [f"{parser.prog} {action.option_strings or action.dest}" for parser in parsers
               for action in parser._actions if not action.help and not isinstance(action, argparse._SubParsersAction)]
    assert not missing


# ---------------------------------------------------------------- the notebooks' install cell

def install_refs():
    """{notebook: the git reference its install cell installs flowers_tl from}."""
    found = {}
    for path in NOTEBOOKS:
        for cell in nbformat.read(REPO / path, as_version=4).cells:
            match = INSTALL_SPEC.search(cell.source) if cell.cell_type == "code" else None
            if match:
                found[path] = match.group(1)
    return found


def test_every_notebook_installs_from_a_reference_of_this_repository():
    """The reference resolves here: as a branch or tag, or as origin's branch in a fresh clone of main."""
    refs = install_refs()
    assert sorted(refs) == NOTEBOOKS
    for path, ref in refs.items():
        resolves = [subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"], cwd=REPO,
                                   capture_output=True).returncode == 0 for name in (ref, f"origin/{ref}")]
        assert any(resolves), f"{path} installs flowers_tl from '{ref}', which this repository does not have"


def test_a_failed_install_is_one_clear_message(tmp_path):
    """The install cell on a Colab-like machine whose pip fails: a sentence naming what, no CalledProcessError."""
    source = next(cell.source for cell in nbformat.read(REPO / NOTEBOOKS[0], as_version=4).cells
                  if cell.cell_type == "code" and INSTALL_SPEC.search(cell.source))
    (tmp_path / "google").mkdir()
    (tmp_path / "google" / "__init__.py").write_text("")
    (tmp_path / "google" / "colab.py").write_text("")
    script = "import sys, google.colab\n" + source
    env = {"PYTHONPATH": str(tmp_path), "GIT_ALLOW_PROTOCOL": "file", "PIP_NO_INDEX": "1",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}  # git may not fetch: nothing can be installed
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, **env), cwd=tmp_path)
    assert result.returncode == 1 and "CalledProcessError" not in result.stderr + result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("pip could not install flowers_tl @ git+https://github.com/") and "@'" in last, last


# ---------------------------------------------------------------- conventions

def test_license_and_one_version():
    project = (REPO / "pyproject.toml").read_text().split("[project]")[1].split("\n[")[0]  # no tomllib on 3.10
    assert re.search(r'^license = "Apache-2.0"$', project, re.MULTILINE)
    assert re.search(r'^license-files = \["LICENSE"\]$', project, re.MULTILINE)
    assert "Apache License" in (REPO / "LICENSE").read_text() and "Version 2.0" in (REPO / "LICENSE").read_text()
    assert re.search(r'^dynamic = \["version"\]', project, re.MULTILINE) and not re.search("^version", project, re.MULTILINE)
    assert 'version = { attr = "flowers_tl.__version__" }' in (REPO / "pyproject.toml").read_text()
    dependencies = project.split("dependencies = [")[1].split("]")[0]
    assert '"tensorflow-datasets>=4.9"' in dependencies  # the tf_flowers fallback works as installed


def test_environment_yml_installs_what_the_readme_test_command_needs():
    assert re.search(r"-e \.\[[^]]*\bjax\b[^]]*\btest\b|-e \.\[[^]]*\btest\b[^]]*\bjax\b",
                     (REPO / "environment.yml").read_text())


@pytest.mark.parametrize("path", ["flowers_tl_run/metrics.json", "ft_run/model.keras", "model.keras"])
def test_runs_and_models_are_ignored_by_git(path):
    assert subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0


def test_readme_runs_no_bare_flowers_tl():
    """Every README command works pasted in order: the venv is never activated, so `.venv/bin/flowers-tl`."""
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    bare = [line for block in blocks for line in block.splitlines()
            if re.search(r"(^|[\s;&|(])flowers-tl\b", line) and not line.lstrip().startswith("#")]
    assert not bare


# ---------------------------------------------------------------- the import graph

def package_imports(top_level_only: bool = False):
    """{module: the flowers_tl modules it imports, at the top or inside a function}, read with ast.

    Modules are named from the package down ("data", "tool.convert"); `top_level_only` keeps the
    imports a module makes when it is imported, not those inside its functions.
    """
    import ast

    graph = {}
    for path in (REPO / "flowers_tl").rglob("*.py"):
        parts = path.relative_to(REPO / "flowers_tl").with_suffix("").parts
        name = ".".join(parts)
        tree = ast.parse(path.read_text())
        nodes = tree.body if top_level_only else ast.walk(tree)
        found = set()
        for node in nodes:
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = list(parts[:-1])[: len(parts) - node.level]
            elif node.module and node.module.startswith("flowers_tl."):
                base = []
            else:
                continue
            module = (node.module or "").removeprefix("flowers_tl.").removeprefix("flowers_tl") if not node.level \
                else (node.module or "")
            prefix = ".".join(base + ([module] if module else []))
            for alias in node.names:
                candidate = f"{prefix}.{alias.name}" if prefix else alias.name
                found.add(candidate if candidate.replace(".", "/") + ".py" in MODULE_FILES else prefix)
        graph[name] = {module for module in found if module}
    return graph


MODULE_FILES = {str(path.relative_to(REPO / "flowers_tl")) for path in (REPO / "flowers_tl").rglob("*.py")}


def test_the_record_format_is_the_ground_floor_and_there_is_no_circle():
    graph = package_imports()
    assert graph["messages"] == set()  # the catalogue's markers and gettext: below everything
    assert graph["records"] <= {"messages"}  # the ground floor: nothing but the marks of its class names
    assert "records" in graph["data"] and "records" in graph["tool.convert"]
    assert not {"tool.convert", "sources"} & graph["data"]  # listing shards never fetches a data set
    for start in ("records", "online", "data", "tool.convert", "sources", "tool.cli"):  # data's floors, the CLI
        seen, todo = set(), [start]
        while todo:
            for imported in graph[todo.pop()] & set(graph) - {"__init__"}:  # the package imports lazily
                assert imported != start, f"import circle through flowers_tl.{start}"
                if imported not in seen:
                    seen.add(imported)
                    todo.append(imported)


def test_the_course_modules_load_the_tool_wing_only_where_a_notebook_never_goes():
    """No module of the course imports `flowers_tl.tool` when it is imported. Inside a function, two do: `sources`
    for the tf_flowers fallback, and the last chapter's `photo_checks`, which lists a learner's folder as the
    converter will (`ftl.convert_folder` is the converter itself); `__main__` is `python -m flowers_tl`."""
    at_import = {name: {module for module in imported if module.startswith("tool")}
                 for name, imported in package_imports(top_level_only=True).items()
                 if not name.startswith("tool") and name != "__main__"}  # `python -m flowers_tl` is the command line
    assert not {name: modules for name, modules in at_import.items() if modules}
    anywhere = {name for name, imported in package_imports().items()
                if not name.startswith("tool") and any(module.startswith("tool") for module in imported)}
    assert anywhere == {"sources", "photo_checks", "__main__"}
