"""The 10M answer taken apart: what each layer of PCAR256,IVFx,PQ256x4fs,Refine(SQ8) buys.

A stand-in of the answer's family (its coarse space sized for the rows it is
built on) is built on the first `rows` rows of a dataset beside variants that
each change one layer: no PCA, 8-bit codes instead of 4-bit fast-scan ones,
64 / 128 / 256 sub-quantizers, no SQ8 refine. Each is searched at one nprobe
and, where it has a refine stage, at several refine depths: recall@10 with its
interval, median QPS and bytes per vector. Built in RAM through the
screening's own builder (helpers.search.screen: one k-means and one assignment
per coarse space, shared), nothing is written but the shared coarse files.
"""

import os

from ..core import heuristics
from ..data.vectors import read_rows
from . import evaluate, screen

PCA_DIMS = 256       # the answer's PCA output
REFINE = "Refine(SQ8)"


def stand_in(n, d, m=None, bits="x4fs", pca=True, refine=True, pca_dims=PCA_DIMS):
    """The answer's factory for n rows of dimension d, one layer changed by the
    arguments: "PCAR256,IVF512,PQ256x4fs,Refine(SQ8)" at 20k x 1024. The PCA
    keeps min(pca_dims, d) dimensions; m (default: one sub-quantizer per
    dimension the PCA keeps, as at 10M) must divide them."""
    dims = min(pca_dims, d)
    space = f"IVF{heuristics.nlist_rule(n)}"
    if pca:
        space = f"PCAR{dims},{space}"
    return ",".join([space, f"PQ{m or dims}{bits}"] + ([REFINE] if refine else []))


def variants(n, d, pca_dims=PCA_DIMS):
    """[(layer, what changes, factory)]: the stand-in first, then one variant per
    layer: no PCA, 8-bit codes, a quarter and half as many sub-quantizers (64
    and 128 at 10M), no refine."""
    dims = min(pca_dims, d)
    return ([("the answer's family", "as built at 10M", stand_in(n, d, pca_dims=pca_dims)),
             ("PCA", f"no PCA: {dims} sub-quantizers over all {d} dimensions",
              stand_in(n, d, dims, pca=False)),
             ("4-bit fast-scan codes", "8-bit PQ codes instead", stand_in(n, d, bits="", pca_dims=pca_dims))]
            + [("sub-quantizers", f"{dims // share} sub-quantizers, not {dims}",
                stand_in(n, d, dims // share, pca_dims=pca_dims)) for share in (4, 2)]
            + [("SQ8 refine", "no refine", stand_in(n, d, refine=False, pca_dims=pca_dims))])


def take_apart(ds, rows, out_dir, nprobe_share=2, k_factors=(1, 4, 16, 64), k=10,
               repeats=evaluate.MIN_BATCHES, single_queries=100, pca_dims=PCA_DIMS):
    """Build `variants` on the first `rows` rows of dataset `ds` and search each at
    nprobe = nlist // nprobe_share (and each refine depth k_factors where it has
    a refine stage). Returns rows of evaluate.sweep (recall@10 with its
    interval, qps_median, file_bytes; "index" is the factory) with "layer",
    "change" and "rows" added."""
    os.makedirs(out_dir, exist_ok=True)
    prefix = screen.Prefix(ds, min(rows, ds.n))
    xq = read_rows(ds.queries, 0, ds.queries.n)
    gt_D, gt_I = screen.ground_truth(prefix, xq, out_dir)
    nprobe = max(1, heuristics.nlist_rule(prefix.n) // nprobe_share)
    out = []
    for layer, change, factory in variants(prefix.n, ds.d, pca_dims):
        index, _ = screen.build_candidate(prefix, factory, None, out_dir)
        nbytes = screen.serialized_size(index)
        depths = [f",k_factor_rf={kf}" for kf in k_factors] if factory.endswith(REFINE) else [""]
        for setting in (f"nprobe={nprobe}{depth}" for depth in depths):  # one a sweep: all timed in full
            found = evaluate.sweep({factory: (index, nbytes)}, xq, gt_D, gt_I, None, ds.metric, k,
                                   settings={factory: [setting]}, repeats=repeats,
                                   single_queries=single_queries, progress=False)
            out += [dict(r, layer=layer, change=change, rows=prefix.n) for r in found]
        del index
    return out
