"""Users' own vectors through the command line: python -m helpers run --base ...,
then python -m helpers build --config recommended.json (real papermill kernels)."""

import json
import os
import re

import faiss
import h5py
import numpy as np
import pytest

from helpers.core import config, index_files
from helpers.data import dataset, groundtruth
from helpers.index import build, indexes
from helpers.search import evaluate
from helpers.pipeline import cli, profile
from helpers.pipeline import run as runner
from conftest import write_vectors
from helpers.data.vectors import read_rows
from test_ingest import write_parquet

D = 64


def clustered(n, seed, d=D):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((40, d))
    return (centres[rng.integers(0, 40, n)] + 0.4 * rng.standard_normal((n, d))).astype(np.float32)


def run_cli(tmp_path, *args):
    return cli.run_command([*args, "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data")])


def run_state(tmp_path):
    (folder,) = os.listdir(tmp_path / "runs")
    with open(tmp_path / "runs" / folder / "run.json") as f:
        return tmp_path / "runs" / folder, json.load(f)


@pytest.mark.timeout(900)  # a whole tiny run or more: beyond the suite's 300 s per test
def test_own_vectors_run_every_notebook_and_the_recommendation_builds_at_full_scale(tmp_path):
    x = clustered(4000, 1) * np.random.default_rng(2).uniform(0.5, 2, (4000, 1)).astype(np.float32)
    write_vectors(tmp_path / "emb.npy", x)
    write_vectors(tmp_path / "q.npy", clustered(200, 3))
    assert run_cli(tmp_path, "--base", str(tmp_path / "emb.npy"), "--queries", str(tmp_path / "q.npy"),
               "--metric", "cosine") == 0
    folder, state = run_state(tmp_path)
    assert state["status"] == "complete" and state["done"] == config.ORDER
    assert state["params"]["all"]["nlist"] == profile.nlist_for(4000, D)  # followed the data
    ds = dataset.load_dataset(tmp_path / "data" / "own-emb")
    assert ds.manifest["normalized"] and ds.n == 4000 and ds.queries.n == 200
    built = build.built_indexes(tmp_path / "data" / "own-emb" / "indexes", ds)
    assert len(built) >= 5
    for name, (path, _) in built.items():  # every index searches with the data's metric
        index = index_files.load_index(path)
        assert all(part.metric_type == faiss.METRIC_INNER_PRODUCT for part in indexes.components(index)), name

    rec_path = folder / "results" / "recommended.json"
    rec = json.loads(rec_path.read_text())
    assert rec["metric"] == "cosine" and rec["predicted_at_target"]["n"] == 4000
    out = tmp_path / "prod" / "index.faiss"
    assert cli.build_command(["--config", str(rec_path), "--base", str(tmp_path / "emb.npy"),
                       "--out", str(out)]) == 0
    index = index_files.load_index(str(out))
    evaluate.set_parameters(index, rec["search"])
    _, gt_I = groundtruth.ground_truth(ds, 100, progress=False)
    _, I = index.search(read_rows(ds.queries, 0, ds.queries.n), rec["k"])
    assert evaluate.knn_recall(I, gt_I, rec["k"]).mean() == rec["explored"][f"recall@{rec['k']}"]
    report = json.loads((tmp_path / "prod" / "index.faiss.build.json").read_text())
    assert report["recommendation"] == rec and report["build"]["factory"] == rec["factory"]


def write_as(kind, folder, x):
    os.makedirs(folder, exist_ok=True)
    if kind in ("fvecs", "bvecs"):
        path = folder / f"v.{kind}"
        write_vectors(path, np.clip(x * 20 + 128, 0, 255).astype(np.uint8) if kind == "bvecs" else x)
    elif kind == "float16":
        path = folder / "v.npy"
        np.save(path, x.astype(np.float16))
    elif kind == "npy-shards":
        path = folder / "shards"
        path.mkdir()
        for i, part in enumerate(np.array_split(x, 4)):
            np.save(path / f"{i:02d}.npy", part)
    elif kind == "parquet":
        path = folder / "pq"
        path.mkdir()
        for i, part in enumerate(np.array_split(x, 3)):
            write_parquet(path / f"{i}.parquet", part, fixed=i == 0, column="vec")
    elif kind == "hdf5":
        path = folder / "ann.hdf5"
        q = clustered(100, 9)
        true = faiss.knn(q, x, 100)[1]
        with h5py.File(path, "w") as f:
            f["train"], f["test"], f["neighbors"] = x, q, true
            f.attrs["distance"] = "euclidean"
    return path


@pytest.mark.parametrize("kind", ["fvecs", "bvecs", "float16", "npy-shards", "parquet", "hdf5"])
def test_every_format_imports_through_the_command_line(kind, tmp_path):
    x = clustered(3000, 4)
    path = write_as(kind, tmp_path / "src", x)
    extra = ["--column", "vec"] if kind == "parquet" else []
    metric = ["--metric", "l2" if kind == "bvecs" else "ip"] if kind != "hdf5" else []
    assert run_cli(tmp_path, "--base", str(path), *metric, "--n-queries", "100",
               "--until", "01_data_generation", *extra) == 0
    folder, state = run_state(tmp_path)
    assert state["done"] == ["01_data_generation"] and state["status"].startswith("stopped")
    stem = os.path.basename(path).split(".")[0]
    ds = dataset.load_dataset(tmp_path / "data" / f"own-{stem}")
    results = json.loads((folder / "results" / "01_data_generation.json").read_text())
    if kind == "hdf5":  # the file's metric and test set; its neighbors agree with our ground truth
        assert ds.n == 3000 and ds.queries.n == 100 and ds.metric == "L2"
        assert results["neighbors_check"]["mean_overlap"] == 1.0
    else:
        assert ds.n == 2900 and ds.queries.n == 100 and results["held_out_queries"] == 100
        assert results["neighbors_check"] is None
    assert ds.d == D and ds.manifest["base_kind"] in ("file", "npy shards", "parquet")


@pytest.mark.parametrize("rows,args,match", [
    (3000, ["--metric", "hamming"], "unknown metric 'hamming': use l2, ip or cosine"),
    (300, ["--preset", "small"], "200 base rows, but this run's indexes need at least 256 to train"),
    (3000, ["--column", "nope"], "applies only to parquet"),
])
def test_bad_own_input_fails_before_any_notebook_with_the_reason(rows, args, match, tmp_path, capsys):
    write_vectors(tmp_path / "emb.npy", clustered(rows, 5))
    assert run_cli(tmp_path, "--base", str(tmp_path / "emb.npy"), "--n-queries", "100", *args) == 1
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "runs").exists() or not os.listdir(tmp_path / "runs")


def test_queries_of_another_dimension_stop_the_import_naming_both(tmp_path, capsys):
    write_vectors(tmp_path / "emb.npy", clustered(3000, 5))
    write_vectors(tmp_path / "q.npy", clustered(50, 6, d=32))
    assert run_cli(tmp_path, "--base", str(tmp_path / "emb.npy"), "--queries", str(tmp_path / "q.npy"),
               "--until", "01_data_generation") == 1
    err = capsys.readouterr().err
    assert "queries in" in err and "have d=32 but the base vectors" in err and "d=64" in err
    assert not (tmp_path / "data" / "own-emb" / "manifest.json").exists()


def test_a_params_file_dataset_section_is_the_same_as_the_command_line(tmp_path):
    write_vectors(tmp_path / "emb.npy", clustered(3000, 5))
    f = tmp_path / "p.yaml"
    f.write_text(f"dataset:\n  base: {tmp_path / 'emb.npy'}\n  metric: COSINE\n  n_queries: 100\n"
                 f"03_build_ivfpq:\n  nprobe: 3\n")
    label, params = runner.load_params(None, f)
    cli_label, cli_params = runner.load_params(None, None, {"base": str(tmp_path / "emb.npy"),
                                                          "metric": "COSINE", "n_queries": 100})
    assert label == cli_label == "own-emb"
    assert params["01_data_generation"] == cli_params["01_data_generation"]
    assert params["01_data_generation"]["base_path"] == str(tmp_path / "emb.npy")
    assert params["01_data_generation"]["n"] == 2900 and params["all"]["metric"] == "IP"
    assert params["03_build_ivfpq"]["nprobe"] == 3
    with pytest.raises(ValueError, match="unknown keys \\['bas'\\]"):
        runner.load_params(None, None, {"bas": "x"})
