"""How much of flowers_tl a notebook loads: run it, then count the lines of every package module in memory.

    python tools/notebook_reach.py notebooks/flowers_tl_solution.ipynb           # the full course
    FLOWERS_TL_FAST=1 python tools/notebook_reach.py notebooks/flowers_tl_solution.ipynb   # quick mode

Every cell runs in a fresh kernel of this environment (nbclient), in a temporary folder; then one
more cell lists the modules `flowers_tl.*` in `sys.modules` with their source lines
(`inspect.getsource`), and this script prints them, their total, each cell that took a second or
more, and the run's seconds. A cell that fails is reported and the run goes on.
"""

import argparse
import json
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

REACH_CELL = """
import inspect, json, sys
modules = sorted(name for name in sys.modules if name == "flowers_tl" or name.startswith("flowers_tl."))
print("REACH " + json.dumps({name: len(inspect.getsource(sys.modules[name]).splitlines()) for name in modules}))
"""


def run(path: str) -> dict:
    """{"lines": {module: lines}, "seconds": {cell id: seconds}, "errors": [...], "total_s": s} of one run."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(REACH_CELL, id="reach"))
    with tempfile.TemporaryDirectory() as folder:
        client = NotebookClient(notebook, timeout=1800, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": folder}})
        seconds, start = {}, time.monotonic()
        with client.setup_kernel():
            for index, cell in enumerate(notebook.cells):
                began = time.monotonic()
                client.execute_cell(cell, index)
                seconds[cell.id] = round(time.monotonic() - began, 1)
        total = round(time.monotonic() - start, 1)
    errors = [f"{cell.id}: {output.ename}: {output.evalue[:200]}" for cell in notebook.cells
              for output in cell.get("outputs", []) if output.output_type == "error"]
    reach = next(output.text for output in notebook.cells[-1].outputs if output.output_type == "stream")
    return {"lines": json.loads(reach.split("REACH ", 1)[1]), "seconds": seconds, "errors": errors, "total_s": total}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook")
    result = run(parser.parse_args(argv).notebook)
    for name, lines in result["lines"].items():
        print(f"{lines:6d}  {name}")
    print(f"{sum(result['lines'].values()):6d}  lines in {len(result['lines'])} modules")
    print("cells of 1 s or more:", {cell: s for cell, s in result["seconds"].items() if s >= 1})
    print(f"run: {result['total_s']} s")
    for error in result["errors"]:
        print("ERROR", error)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
