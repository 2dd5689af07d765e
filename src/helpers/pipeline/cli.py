"""The command line: python -m helpers COMMAND ...

    python -m helpers run --preset small          re-run the workbook (helpers.pipeline.run)
    python -m helpers build DATA_DIR FACTORY      one index, resumable (helpers.index.build)
    python -m helpers build --config recommended.json --base PATH --out index.faiss
    python -m helpers screen DATA_DIR --rows 1000000 --out DIR   (helpers.search.screen)
    python -m helpers measure DATA_DIR FACTORY    memory of a build, in this process

Every command answers bad input with one line and exit status 1, no traceback.
"""

import argparse
import json
import os
import sys

from ..core import config
from ..core.files import LockedError, parse_duration, parse_size, write_csv
from ..data.dataset import load_dataset
from ..index import build, measure
from ..index.export import build_from_config
from ..search import screen
from . import run


def run_command(argv=None):

    ap = argparse.ArgumentParser(prog="python -m helpers run", description=run.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(config.PRESETS), default=None,
                    help="scale to run at (default: small, or the one the --params file names)")
    ap.add_argument("--params", help="YAML or JSON file overriding the preset's parameters")
    ap.add_argument("--force", action="store_true",
                    help="regenerate the dataset, ground truth and indexes even if they exist")
    ap.add_argument("--runs-dir", default=None, help="where run folders go (default: runs/)")
    ap.add_argument("--data-dir", default=None,
                    help=f"where <preset>/ with the dataset and indexes goes (default: ${run.DATA_DIR_ENV} "
                         f"or data/); --check says how much a preset needs")
    own = ap.add_argument_group("your own vectors (instead of generated data)")
    own.add_argument("--base", help="your vectors: .npy, .fvecs, .bvecs, .hdf5 (ann-benchmarks), "
                                    "a .parquet file, or a folder of .npy or .parquet files")
    own.add_argument("--queries", help="query vectors (default: --n-queries random rows of --base, "
                                       "left out of the indexed base; an .hdf5 file's own test set)")
    own.add_argument("--metric", help="l2, ip or cosine (default: an .hdf5 file's own, else ip)")
    own.add_argument("--column", help="parquet: the vector column (default: embedding)")
    own.add_argument("--n-queries", type=int, help="rows held out as queries (default: 1000)")
    own.add_argument("--max-rows", type=int,
                     help="explore on a random subset of this many rows (default: all)")
    ap.add_argument("--ram-budget", help='memory the index may use when serving, e.g. "16G" '
                                         '(default: the memory available now)')
    ap.add_argument("--build-budget", help='memory a build may use, e.g. "20G" (default: the memory '
                                           'available now); also caps training samples')
    ap.add_argument("--until", choices=config.ORDER, help="stop after this notebook (default: run all)")
    ap.add_argument("--time-budget", help='refuse the run if its builds are estimated to take longer, '
                                          'e.g. "2h", "90min" (default: the preset\'s: 2h for full)')
    ap.add_argument("--check", action="store_true",
                    help="print what the run will write (its peak disk, finalists included), its "
                         "peak memory and time, and whether each fits now; write nothing; exit 0 "
                         "when it fits, 1 when it does not")
    a = ap.parse_args(argv)
    data = {k: getattr(a, k) for k in run.DATASET_KEYS if getattr(a, k) is not None}
    if data and "base" not in data:
        ap.error("--queries, --metric, --column, --n-queries and --max-rows go with --base")
    limits = {k: v for k, v in (("ram_budget", a.ram_budget), ("build_budget", a.build_budget)) if v}
    try:
        folder = run.run(a.preset, a.params, a.force, a.runs_dir, a.data_dir, data=data or None,
                         until=a.until, limits=limits, time_budget=a.time_budget, check=a.check)
    except (run.RunError, ValueError, OSError, LockedError) as e:
        print(f"\nRUN FAILED: {e}", file=sys.stderr)
        return 1
    if a.check:
        return 1 if folder["problems"] else 0
    print(f"\nrun {'complete' if not a.until else 'stopped after ' + a.until}: {folder}/summary.html")
    return 0


def build_command(argv=None):
    """One index, built (or resumed, or reused) by build_index; prints its summary line.

    python -m helpers build DATA_DIR FACTORY [--out PATH] [...]   a dataset folder's index
    python -m helpers build --config recommended.json --base PATH --out index.faiss
                                            notebook 06's recommendation, on all of PATH
    """
    ap = argparse.ArgumentParser(prog="python -m helpers build", description=build_command.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", nargs="?", help="a dataset folder (notebook 01, or helpers.data.ingest)")
    ap.add_argument("factory", nargs="?", help='a faiss factory string, e.g. "HNSW32,SQ8"')
    ap.add_argument("--config", help="a recommended.json written by notebook 06 (with --base)")
    ap.add_argument("--base", help="with --config: your vectors, any format helpers.pipeline.run --base takes")
    ap.add_argument("--column", default="embedding", help="parquet: the vector column")
    ap.add_argument("--out", help="index path (default: DATA_DIR/indexes/<factory>.faiss, as the "
                                  "notebooks name it; required with --config)")
    ap.add_argument("--ef-construction", type=int, default=None)
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--force", action="store_true",
                    help="rebuild an index that exists but was built from other inputs")
    ap.add_argument("--accept-scale", action="store_true",
                    help="with --config: build even far beyond the rows it was explored on")
    a = ap.parse_args(argv)
    try:
        r = _build(ap, a)
    except (ValueError, OSError, LockedError) as e:  # bad input, full disk, busy: one line
        print(f"BUILD FAILED: {e}", file=sys.stderr)
        return 1
    print(r["summary"])
    return 0


def _build(ap, a):

    if a.config:
        if not (a.base and a.out) or a.factory:
            ap.error("--config takes --base and --out, and no DATA_DIR FACTORY")

        r = build_from_config(a.config, a.base, a.out, a.column, a.data_dir, a.threads,
                              accept_scale=a.accept_scale, overwrite=a.force)
    else:
        if not (a.data_dir and a.factory):
            ap.error("give DATA_DIR FACTORY, or --config with --base and --out")
        ds = load_dataset(a.data_dir)
        name = build.build_name(a.factory, a.ef_construction)
        out = a.out or build.index_path(os.path.join(a.data_dir, "indexes"), name)
        r = build.build_index(ds, a.factory, out, n_train=a.n_train, threads=a.threads,
                        ef_construction=a.ef_construction, overwrite=a.force)
    return r


def measure_command(argv=None):

    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--load"]:
        ap = argparse.ArgumentParser(description="resident memory of a loaded index")
        ap.add_argument("--load", required=True)
        ap.add_argument("--mmap", action="store_true")
        ap.add_argument("--dataset", default=None)
        ap.add_argument("--setting", default="")
        a = ap.parse_args(argv)
        try:
            json.dump(measure.loaded_rss(a.load, a.mmap, a.dataset, a.setting), sys.stdout)
        except (ValueError, OSError) as e:
            print(f"MEASURE FAILED: {e}", file=sys.stderr)
            return 1
        print()
        return
    ap = argparse.ArgumentParser(prog="python -m helpers measure", description=measure.__doc__)
    ap.add_argument("dataset")
    ap.add_argument("factory")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--add-batch", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)

    try:
        out = measure.measure(load_dataset(a.dataset), a.factory, a.n_train, a.add_batch, a.threads)
    except (ValueError, OSError, LockedError) as e:
        print(f"MEASURE FAILED: {e}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout)
    print()


def screen_command(argv=None):

    ap = argparse.ArgumentParser(prog="python -m helpers screen", description="screen index families on the first rows of a dataset")
    ap.add_argument("data_dir")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", required=True, help="folder for the screening's results")
    ap.add_argument("--target-n", type=int, help="rows the finalists will be built on (default: all)")
    ap.add_argument("--ram-budget", default="20G")
    ap.add_argument("--time-budget", help='stop starting new candidates after this long, e.g. "40min"')
    ap.add_argument("--build-time-budget",
                    help='how long one finalist\'s build at --target-n may take (projected), e.g. "45min"')
    a = ap.parse_args(argv)
    try:
        rows, verdict = _screen(a, screen, load_dataset, parse_duration, parse_size)
    except (ValueError, OSError, LockedError) as e:
        print(f"SCREENING FAILED: {e}", file=sys.stderr)
        return 1
    for v in verdict:
        print(f"{v['family']:45s} {v['verdict']}")
    return 0


def _screen(a, screen, load_dataset, parse_duration, parse_size):
    ds = load_dataset(a.data_dir)
    rows, verdict = screen.screen(ds, a.rows, a.out, target_n=a.target_n,
                                  ram_budget=parse_size(a.ram_budget),
                                  time_budget=parse_duration(a.time_budget) if a.time_budget else None,
                                  build_time_budget=(parse_duration(a.build_time_budget)
                                                     if a.build_time_budget else None))

    write_csv(os.path.join(a.out, "screening.csv"), [
        {k: (json.dumps(v) if isinstance(v, list) else v) for k, v in r.items()} for r in rows])
    return rows, verdict


COMMANDS = {"run": run_command, "build": build_command, "screen": screen_command,
            "measure": measure_command}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:]) or 0


if __name__ == "__main__":  # python -m helpers.<wing>.<module>: say the command form
    from ..core.usage import wrong_form

    wrong_form("cli")
