"""faiss index objects: coarse spaces, fast-scan twins, preassigned adds.

Indexes that share a coarse space (helpers.index.factory_tree.split_factory)
share its trained transform, its centroids and the list of every row, so they
are trained and assigned once (helpers.index.coarse, helpers.search.screen)
and each index only encodes. What an index is made of is read from its
parsed factory tree (factory_tree.parse), never from a second faiss object.

Fast-scan IVF indexes (PQ…x4fs, RaBitQfs) keep their lists in SIMD blocks
that faiss's preassigned add path does not fill correctly: they are filled as
their plain *twin* (PQ…x4, RaBitQ) and converted at the end with faiss's own
constructors, IndexIVFPQFastScan(ivfpq) and IndexIVFRaBitQFastScan(ivfrabitq).
"""

import contextlib

import faiss
import numpy as np
from faiss.contrib import ivf_tools

from ..data.dataset import faiss_metric
from .factory_tree import (FactoryError, explain_factory_error, inner_index, slots_per_vector,
        twin_factory)


def components(index, parts=("index", "base_index", "refine_index", "storage", "quantizer")):
    """The index and every index nested in it (pre-transform, refine, HNSW, IVF
    quantizer), or only those reached through `parts`."""
    index = faiss.downcast_index(index)
    out = [index]
    for attr in parts:
        child = getattr(index, attr, None)
        if isinstance(child, faiss.Index):
            out += components(child, parts)
    return out


def transforms(index):
    """The pre-transforms applied before the IVF stage (outermost first)."""
    out = []
    for sub in components(index, ("index", "base_index")):
        if isinstance(sub, faiss.IndexPreTransform):
            out += [faiss.downcast_VectorTransform(sub.chain.at(i)) for i in range(sub.chain.size())]
    return out


def apply_transforms(index, x):
    """x (float32 (n, d)) as the IVF stage of `index` sees it: float32 (n, d')."""
    for vt in transforms(index):
        x = vt.apply(np.ascontiguousarray(x, dtype="float32"))
    return np.ascontiguousarray(x, dtype="float32")


def load_space(index, space):
    """Give the untrained `index` the trained coarse space of `space` (an index
    built from "<coarse space>,Flat" and trained): its transforms' matrices and a
    copy of its quantizer. faiss then trains only the codes: IndexPreTransform
    skips trained transforms, and IndexIVF skips k-means when the quantizer
    already holds nlist centroids (Level1Quantizer::train_q1)."""
    mine, theirs = transforms(index), transforms(space)
    if len(mine) != len(theirs):
        raise ValueError("the index and the coarse space have different pre-transforms")
    for dst, src in zip(mine, theirs):
        if not isinstance(src, faiss.LinearTransform):
            if dst.is_trained:  # data-independent (a Hadamard rotation): nothing to share
                continue
            raise ValueError(f"cannot share a trained {type(src).__name__}")
        dst.A, dst.b = src.A, src.b  # SWIG copies the vectors
        dst.have_bias, dst.is_orthonormal, dst.is_trained = src.have_bias, src.is_orthonormal, True
    # faiss.contrib.ivf_tools.replace_ivf_quantizer keeps the new quantizer alive through
    # the Python proxy it is given, which extract_index_ivf creates afresh: the IVF owns it here
    ivf = faiss.extract_index_ivf(index)
    quantizer = faiss.clone_index(faiss.extract_index_ivf(space).quantizer)
    if ivf.own_fields:
        faiss.downcast_index(ivf.quantizer).this.own(True)  # freed by Python once dropped
    quantizer.this.disown()
    ivf.quantizer, ivf.own_fields = quantizer, True
    return index


def add_preassigned(index, x, assign_ids):
    """Add rows x (float32 (n, d)) to `index` with their precomputed lists (int64
    (n,)), through its transforms and refine stage; ids continue from ntotal. Not
    for fast-scan IVF: fill its twin and convert (to_fast_scan)."""
    top = faiss.downcast_index(index)
    if isinstance(top, faiss.IndexRefine):
        add_preassigned(top.base_index, x, assign_ids)
        top.refine_index.add(np.ascontiguousarray(x, dtype="float32"))
    elif isinstance(top, faiss.IndexPreTransform):
        add_preassigned(top.index, apply_transforms(top, x), assign_ids)
    else:
        if isinstance(top, (faiss.IndexIVFPQFastScan, faiss.IndexIVFRaBitQFastScan)):
            raise ValueError("preassigned adds into a fast-scan IVF give a broken index: "
                             "fill its twin (twin_factory) and convert it (to_fast_scan)")
        ivf_tools.add_preassigned(top, np.ascontiguousarray(x, dtype="float32"),
                                  np.ascontiguousarray(assign_ids, dtype="int64"))
    top.ntotal = faiss.extract_index_ivf(top).ntotal


def _converted(ivf):
    """The fast-scan copy of a filled plain IVF (IVFPQ 4-bit or IVFRaBitQ); it
    takes over the quantizer, so `ivf` may then be freed."""
    if isinstance(ivf, faiss.IndexIVFRaBitQ):
        fs = faiss.IndexIVFRaBitQFastScan(ivf)
    else:
        fs = faiss.IndexIVFPQFastScan(ivf)
    ivf.own_fields, fs.own_fields = False, True
    return fs


def to_fast_scan(index):
    """The filled twin `index` with its plain IVF replaced by the fast-scan IVF
    (the same codes in SIMD blocks), inside any transform or refine stage."""
    top = faiss.downcast_index(index)
    for attr in ("base_index", "index"):  # IndexRefine, IndexPreTransform
        if isinstance(top, (faiss.IndexRefine, faiss.IndexPreTransform)) and hasattr(top, attr):
            child = faiss.downcast_index(getattr(top, attr))
            new = to_fast_scan(child)
            if top.own_fields:
                child.this.own(True)  # the twin was the parent's: Python frees it once dropped
            new.this.disown()  # the parent owns the fast-scan index from now on
            setattr(top, attr, new)
            top.own_fields = True
            return index  # the caller's proxy, which may own the object; `top` does not
    return _converted(top)


def new_index(factory, d, metric="L2"):
    """faiss.index_factory(d, factory, metric) with training set up for speed.

    The factory turns on polysemous training for PQ codes with 8 bits. It
    only serves polysemous Hamming filtering at search time (not used here)
    and costs about 2 s per sub-quantizer whatever the sample size, so it is
    switched off.
    """
    try:
        index = faiss.index_factory(d, factory, faiss_metric(metric))
    except RuntimeError as e:
        raise FactoryError(explain_factory_error(factory, d, str(e))) from None
    for sub in components(index):
        if hasattr(sub, "do_polysemous_training"):
            sub.do_polysemous_training = False
    return _with_metric(index, factory, d, faiss_metric(metric))


def _with_metric(index, factory, d, metric_type):
    """`index` with `metric_type` in every part, or a FactoryError. faiss's factory
    drops the metric for HNSW over PQ ("HNSW32,PQ64" for inner product is built
    for L2); that one is rebuilt with the IndexHNSWPQ constructor, which takes it."""
    top = faiss.downcast_index(index)
    if isinstance(top, faiss.IndexHNSWPQ) and top.metric_type != metric_type:
        pq = faiss.downcast_index(top.storage).pq
        m = int(faiss.vector_to_array(top.hnsw.cum_nneighbor_per_level)[1] // 2)
        index = faiss.IndexHNSWPQ(d, pq.M, m, pq.nbits, metric_type)
    wrong = [type(c).__name__ for c in components(index) if c.metric_type != metric_type]
    if wrong:
        raise FactoryError(f"{factory!r}: faiss built {', '.join(wrong)} with another metric than "
                           f"the dataset's; choose another factory string")
    return index


def storage(index):
    """The parts of `index` that hold the added vectors: not a coarse quantizer."""
    return components(index, ("index", "base_index", "refine_index", "storage"))


def work_index(node):
    """The untrained index that preassigned adds fill for the parsed factory
    `node` (factory_tree.parse): the index itself, or for fast-scan its plain
    twin with the fast-scan index's residual setting (faiss's "PQ64x4fs"
    encodes vectors, "PQ64x4fsr" residuals)."""
    factory, d, metric = node["factory"], node["d"], node["metric"]
    twin = twin_factory(factory)
    if twin is None:
        return new_index(factory, d, metric)
    work = new_index(twin, d, metric)
    faiss.extract_index_ivf(work).by_residual = inner_index(node)["by_residual"]
    return work


def final_index(work, node):
    """The index for the parsed factory `node` from a filled work_index:
    fast-scan converted, with the fast-scan index's own search default
    (RaBitQfs's qb, which the plain twin's differs from); else `work`."""
    if twin_factory(node["factory"]) is None:
        return work
    out = to_fast_scan(work)
    qb = inner_index(node).get("qb")
    if qb is not None:
        faiss.downcast_index(faiss.extract_index_ivf(out)).qb = qb
    return out


def set_ef_construction(index, ef_construction):
    """Set HNSW's efConstruction (search depth while inserting) on every HNSW
    graph inside `index`; the factory string cannot say it. Returns the index."""
    for sub in components(index):
        if isinstance(sub, faiss.IndexHNSW):
            sub.hnsw.efConstruction = ef_construction
    return index


@contextlib.contextmanager
def omp_threads(threads=None):
    """Run the block with `threads` OpenMP threads (None or 0: unchanged), then
    restore the previous setting. Yields the thread count in force."""
    before = faiss.omp_get_max_threads()
    if threads:
        faiss.omp_set_num_threads(int(threads))
    try:
        yield faiss.omp_get_max_threads()
    finally:
        faiss.omp_set_num_threads(before)


def replay_hnsw_levels(index, rows):
    """HNSW draws each new vector's level from a random generator that is not
    saved with the index. Drawing the levels of the rows already added makes a
    resumed build continue the sequence of an uninterrupted one (~3 s per
    million rows)."""
    for sub in components(index):
        if isinstance(sub, faiss.IndexHNSW):
            for _ in range(rows):
                sub.hnsw.random_level()


def reserve(index, n, list_sizes=None):
    """Allocate the final size of the index's growing arrays up front, so that
    nothing grows by doubling (a std::vector past 8.6 GB of SQ8 codes would
    briefly hold 8.6 + 17.2 GB): flat code arrays of n vectors, HNSW links for
    n vectors (+2%), and inverted lists of the given sizes (int (nlist,))."""
    for sub in storage(index):
        if isinstance(sub, faiss.IndexFlatCodes):
            have = sub.codes.size()
            sub.codes.resize(max(have, n * sub.code_size))
            sub.codes.resize(have)  # shrinking keeps the capacity
        elif isinstance(sub, faiss.IndexHNSW):
            links = sub.hnsw.neighbors
            have = links.size()
            links.resize(max(have, int(n * slots_per_vector(sub.hnsw) * 1.02) + 1024))
            links.resize(have)
        elif isinstance(sub, faiss.IndexIVF) and list_sizes is not None:
            il = faiss.downcast_InvertedLists(sub.invlists)
            if isinstance(il, faiss.ArrayInvertedLists):
                for list_no, size in enumerate(list_sizes):
                    have = il.list_size(list_no)
                    il.resize(list_no, max(have, int(size)))
                    il.resize(list_no, have)


def sq_qtype(index):
    """Name of the scalar-quantizer type an index really uses ('QT_8bit', 'QT_4bit',
    'QT_fp16', ...), looked up through any transform, refine or HNSW wrapper;
    None if it has no scalar quantizer."""
    for sub in components(index):
        sq = getattr(sub, "sq", None)
        if sq is not None:
            return next(name for name in dir(faiss.ScalarQuantizer)
                        if name.startswith("QT_") and getattr(faiss.ScalarQuantizer, name) == sq.qtype)
    return None
