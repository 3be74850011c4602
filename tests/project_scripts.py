"""The project's scripts (``tools/``, ``benchmarks/``) as modules, so that
tests call their functions and ``main`` in-process (neither folder is a
package)."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative_path: str):
    """``ROOT / relative_path`` (e.g. ``'tools/benchmark.py'``), run as a
    module named after its file."""
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
