"""Helpers behind the Faiss 10M x 1024 workbook, in wings that follow the notebooks.

    core      files, locks, keyed files, index files, heuristics, config, keys, progress
    data      notebook 01: vector files, synthetic data, dataset folders, ground truth
    index     notebooks 02-05: factory facts, memory model, planner, coarse spaces, builds
    search    notebook 06: recall, QPS and sweeps, choice, exact re-ranking, screening
    scale     notebook 07: sharded builds and search on Dask
    notebook  figures, tables, widgets, HTML exports, the notebooks' set-up
    pipeline  the papermill runner, its checks, the command line, the run summary

A wing imports only the wings listed above it (tests/test_architecture.py holds it).
Import a module from its wing: ``from helpers.index import build``.

The flat names of earlier versions (``from helpers import build``,
``import helpers.files``) still import the same module, with a DeprecationWarning
naming its wing; ``python -m helpers.build`` says ``use: python -m helpers build``.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__version__ = "0.1.0"

WINGS = ("core", "data", "index", "search", "scale", "notebook", "pipeline")

MOVED = {
    "core": "files keyed_files index_files heuristics config keys progress rss quiet limits usage",
    "data": "vectors sources synthetic dataset dataset_files ingest groundtruth",
    "index": "factory_tree memory planner coarse indexes build measure export",
    "search": "evaluate choose exact final_stage screen",
    "scale": "distributed",
    "notebook": "plots tables widgets notebook_html setup evidence explore",
    "pipeline": "run run_checks cli summary profile",
}
NEW_PATH = {f"{__name__}.{m}": f"{__name__}.{w}.{m}" for w, ms in MOVED.items() for m in ms.split()}
COMMANDS = ("run", "build", "screen", "measure")  # old modules named like a subcommand


class _OldPath(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`helpers.<old flat name>` resolves to the module in its wing (the same object),
    and `python -m helpers.<old>` says which command to use."""

    def find_spec(self, name, path=None, target=None):
        if name not in NEW_PATH:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        warnings.warn(f"{spec.name} is now {NEW_PATH[spec.name]}", DeprecationWarning, stacklevel=2)
        return importlib.import_module(NEW_PATH[spec.name])

    def exec_module(self, module):
        pass  # the wing's module ran when imported

    def get_code(self, name):  # only runpy asks, for `python -m helpers.<old>`
        command = name.rsplit(".", 1)[1]
        if command in COMMANDS:
            src = f"from helpers.core.usage import wrong_form\nwrong_form({command!r})"
        else:
            src = (f"import sys\nsys.exit('{name} is a library module ({NEW_PATH[name]}), not a command: "
                   f"use python -m helpers {{run,build,screen,measure}}')")
        return compile(src, f"<{name}>", "exec")


if not any(isinstance(f, _OldPath) for f in sys.meta_path):
    sys.meta_path.insert(0, _OldPath())
