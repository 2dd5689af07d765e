"""faiss index objects: coarse spaces, fast-scan twins, preassigned adds.

An IVF factory string splits into a *coarse space* (pre-transforms and the
IVF quantizer: "PCAR256,IVF16384_HNSW32") and what is stored per vector
("PQ64x4fs,Refine(SQ8)"). Indexes that share a coarse space share its trained
transform, its centroids and the list of every row, so they are trained and
assigned once (helpers.index.coarse, helpers.search.screen) and each index only encodes.

Fast-scan IVF indexes (PQ…x4fs, RaBitQfs) keep their lists in SIMD blocks
that faiss's preassigned add path does not fill correctly: they are filled as
their plain *twin* (PQ…x4, RaBitQ) and converted at the end with faiss's own
constructors, IndexIVFPQFastScan(ivfpq) and IndexIVFRaBitQFastScan(ivfrabitq).
"""

import contextlib
import re

import faiss
import numpy as np
from faiss.contrib import ivf_tools

from ..data.dataset import faiss_metric
from .factory_tree import FactoryError, explain_factory_error


_IVF = re.compile(r"IVF\d+(_HNSW\d+)?")
_FAST_SCAN = {re.compile(r"(PQ\d+x4)fsr?"): r"\1", re.compile(r"RaBitQfs(\d*)"): r"RaBitQ\1"}


def split_factory(factory):
    """(coarse space, the rest) of an IVF factory string; (None, factory) if it has
    no IVF. "PCAR256,IVF16384,PQ64x4fs,Refine(SQ8)" -> ("PCAR256,IVF16384",
    "PQ64x4fs,Refine(SQ8)")."""
    parts = factory.split(",")
    for i, p in enumerate(parts):
        if _IVF.fullmatch(p):
            return ",".join(parts[:i + 1]), ",".join(parts[i + 1:])
    return None, factory


def twin_factory(factory):
    """The factory string with its fast-scan code replaced by the plain twin
    ("IVF4096,PQ128x4fs,Refine(SQ8)" -> "IVF4096,PQ128x4,Refine(SQ8)"); None when
    `factory` has no fast-scan IVF code."""
    space, rest = split_factory(factory)
    if space is None:
        return None
    code, *tail = rest.split(",")
    for pattern, plain in _FAST_SCAN.items():
        if pattern.fullmatch(code):
            return ",".join([space, pattern.sub(plain, code)] + tail)
    return None


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


def assign(space, x):
    """List id (int64 (n,)) of each row of x (float32 (n, d)) in the trained coarse
    space `space`: its transforms, then the nearest centroid."""
    ivf = faiss.extract_index_ivf(space)
    _, a = ivf.quantizer.search(apply_transforms(space, x), 1)
    return a.ravel()


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


def work_index(factory, d, metric="L2"):
    """The untrained index that preassigned adds fill for `factory`: the index
    itself, or for fast-scan its plain twin with the fast-scan index's residual
    setting (faiss's "PQ64x4fs" encodes vectors, "PQ64x4fsr" residuals)."""
    twin = twin_factory(factory)
    if twin is None:
        return new_index(factory, d, metric)
    work, reference = new_index(twin, d, metric), new_index(factory, d, metric)
    faiss.extract_index_ivf(work).by_residual = faiss.extract_index_ivf(reference).by_residual
    return work


def final_index(work, factory, d, metric="L2"):
    """The index for `factory` from a filled work_index: fast-scan converted, with
    the fast-scan index's own search defaults (RaBitQfs's qb); else `work`."""
    if twin_factory(factory) is None:
        return work
    reference = new_index(factory, d, metric)  # kept alive while its IVF is read
    fs_default = faiss.downcast_index(faiss.extract_index_ivf(reference))
    out = to_fast_scan(work)
    if hasattr(fs_default, "qb"):
        faiss.downcast_index(faiss.extract_index_ivf(out)).qb = fs_default.qb
    return out


def preassignable(factory):
    """Whether `factory` can be filled from a shared coarse assignment: an IVF
    whose codes are not fast-scan behind an exact RFlat (whose codes it cannot
    share with the twin)."""
    space, rest = split_factory(factory)
    return space is not None and not (twin_factory(factory) and rest.endswith("RFlat"))


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
            cum = faiss.vector_to_array(sub.hnsw.cum_nneighbor_per_level)
            probas = faiss.vector_to_array(sub.hnsw.assign_probas)
            slots = sum(p * cum[level + 1] for level, p in enumerate(probas))
            links.resize(max(have, int(n * slots * 1.02) + 1024))
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
