"""Predict the memory and disk an index needs, before building it.

The facts of an index come from its parsed factory tree (helpers.index.factory_tree);
on top of them this module adds what a build allocates, following faiss's C++ code:

- IVF: inverted lists hold code_size + 8 (id) bytes per vector; IVF-PQ with
  L2 keeps a precomputed table of nlist x M x 2^nbits floats when it is under
  faiss's 2 GiB limit; fast-scan lists are padded to blocks of 32 vectors.
- HNSW: per vector, the expected number of neighbour slots over all levels
  (4 bytes each), its level (4 bytes) and an offset (8 bytes), plus storage.
- Training: k-means keeps assignments (12 bytes per point) and samples at most
  256 points per centroid; encoders train on at most 65,536 residuals; OPQ
  and PCA make rotated copies of the training set.
- Adding: faiss adds to IVF indexes in blocks of 65,536 vectors, each with a
  residual and a code buffer; pre-transforms copy each batch.

All sizes are in bytes. Every figure is a model: tests and
``benchmarks/bench_memory.py`` compare it with measured RSS and file sizes.
"""

import math

import faiss

from ..core.files import format_bytes
from ..core.heuristics import (ADD_BATCH, ASSIGN_BLOCK, HNSW_LINKS_RESERVE, MIN_PER_CENTROID,
        per_centroid)
from .factory_tree import inner_index, parse


IVF_ADD_BLOCK = 65536          # IndexIVF::add_with_ids processes this many at a time
IVFPQ_ADD_BLOCK = 32768        # IndexIVFPQ::add_core_o splits again into blocks of this
ENCODER_TRAIN_MAX = 65536      # pq.cp.max_points_per_centroid * ksub (256 * 256)
KMEANS_MAX_PER_CENTROID = 256  # ClusteringParameters.max_points_per_centroid
BLAS_BLOCK = 4096 * 1024 * 4   # exhaustive search distance block (bs_x x bs_y floats)
FASTSCAN_BBS = 32
PQ_ENCODE_BLOCK = 256 * 1024   # product_quantizer_compute_codes_bs
FAST_SCAN = ("pqfs", "rabitqfs")  # encoders filled through a plain twin and converted


# ------------------------------------------------------------ index sizes


def index_ram(node, n):
    """Bytes the index holds in RAM once n vectors are added."""
    kind = node["kind"]
    if kind == "pretransform":
        return sum(t["params_bytes"] for t in node["chain"]) + index_ram(node["index"], n)
    if kind == "refine":
        return index_ram(node["base"], n) + index_ram(node["refine"], n)
    if kind == "hnsw":
        return (index_ram(node["storage"], n) + n * (4 * node["slots_per_vector"] + 4 + 8)
                + node["ram_only_bytes"])
    if kind == "ivf":
        per_vector = node["code_size"] + 8
        lists = n * per_vector + node["nlist"] * 48  # two std::vector headers per list
        if node["encoder"] in FAST_SCAN:  # lists padded to blocks of 32 codes
            lists += node["nlist"] * FASTSCAN_BBS / 2 * node["code_size"]
        return (index_ram(node["quantizer"], node["nlist"]) + lists
                + node["encoder_params_bytes"] + node["precomputed_table_bytes"])
    return n * node["code_size"] + node["params_bytes"]


def bytes_per_vector(node, n):
    """Index RAM each of n vectors adds (codes, ids, graph links), without the
    fixed part (centroids, codebooks): (index_ram(n) - index_ram(0)) / n."""
    return (index_ram(node, n) - index_ram(node, 0)) / n


def disk_bytes(node, n):
    """Bytes of the file faiss.write_index writes for n vectors.

    The same payload as in RAM, less what faiss recomputes on load (IVF-PQ's
    precomputed table), plus per-list sizes (8 bytes each) and headers.
    """
    kind = node["kind"]
    header = 64
    if kind == "pretransform":
        return (sum(t["params_bytes"] + header for t in node["chain"])
                + disk_bytes(node["index"], n))
    if kind == "refine":
        return disk_bytes(node["base"], n) + disk_bytes(node["refine"], n) + header
    if kind == "hnsw":
        graph = n * (4 * node["slots_per_vector"] + 4 + 8) + 8
        return disk_bytes(node["storage"], n) + graph + 40 * 8 + header
    if kind == "ivf":
        lists = n * (node["code_size"] + 8) + node["nlist"] * 8
        if node["encoder"] in FAST_SCAN:
            lists += node["nlist"] * FASTSCAN_BBS / 2 * node["code_size"]
        return (disk_bytes(node["quantizer"], node["nlist"]) + lists
                + node["encoder_params_bytes"] + 2 * header)
    return n * node["code_size"] + node["params_bytes"] + header


# ---------------------------------------------------------- build and search


def train_points(node, n_train):
    """How many training points the top-level index really uses (k-means cap)."""
    inner = inner_index(node)
    if inner["kind"] == "ivf":
        return min(n_train, KMEANS_MAX_PER_CENTROID * inner["nlist"])
    return n_train


def _train_extra(node, n_train, d):
    """Temporary bytes while training `node` on n_train points of dimension d
    (the training array itself not included)."""
    kind = node["kind"]
    if kind == "pretransform":
        extra, dim = 0, d
        for t in node["chain"]:
            nt = min(n_train, ENCODER_TRAIN_MAX)
            # OPQMatrix::train: the sample, its centred copy, projections, PQ
            # reconstructions and X*R (5 copies), and, where sub-vectors have 16+
            # dimensions, the distance tables of encoding all of them with its
            # 8-bit PQ (1.5 GB for OPQ24_384 on 60k rows, measured 1.9 GB in all)
            opq = 5 * nt * max(t["d_in"], t["d_out"]) * 4
            if t["kind"] == "OPQMatrix":
                opq += _pq_encode_tables({"M": t["M"], "nbits": 8}, t["d_out"], min(nt, PQ_ENCODE_BLOCK))
            extra = max(extra, opq)
            # the whole training set is transformed once to train what follows
            dim = t["d_out"]
        copy = n_train * dim * 4
        return max(extra, copy + _train_extra(node["index"], n_train, dim))
    if kind == "refine":
        return max(_train_extra(node["base"], n_train, d), _train_extra(node["refine"], n_train, d))
    if kind == "hnsw":
        return _train_extra(node["storage"], n_train, d)
    if kind == "pq":
        ksub = 1 << node["nbits"]
        nt = min(n_train, KMEANS_MAX_PER_CENTROID * ksub)
        return nt * (d // node["M"]) * 4 + nt * 12
    if kind == "ivf":
        nlist = node["nlist"]
        nt = min(n_train, KMEANS_MAX_PER_CENTROID * nlist)
        kmeans = nt * 12 + 2 * nlist * d * 4 + BLAS_BLOCK
        if nt < n_train:
            kmeans += nt * d * 4  # faiss subsamples into a copy
        encoder = 0
        if node["encoder"] in ("pq", "pqfs", "sq"):
            ne = min(n_train, ENCODER_TRAIN_MAX)
            if ne < n_train:
                encoder += ne * d * 4  # subsampled copy
            if node["by_residual"]:
                encoder += ne * d * 4 + ne * 8  # residuals and their assignment
            if node["encoder"] in ("pq", "pqfs"):
                encoder += ne * (d // node["M"]) * 4 + ne * 12  # one sub-vector slice, k-means
        return max(kmeans, encoder + node["precomputed_table_bytes"])
    return 0


def _add_extra(node, batch, d, n, threads):
    """Temporary bytes while adding one batch of `batch` vectors, the index
    already holding about n (the batch array itself not included)."""
    kind = node["kind"]
    if kind == "pretransform":
        # the transformed batch, and (measured) a second copy on the way into the index
        return 2 * batch * node["chain"][-1]["d_out"] * 4 + _add_extra(
            node["index"], batch, node["chain"][-1]["d_out"], n, threads)
    if kind == "refine":
        return max(_add_extra(node["base"], batch, d, n, threads),
                   _add_extra(node["refine"], batch, d, n, threads))
    if kind == "hnsw":
        # per-vector locks over the whole index, a visited table per thread
        return n * (4 + threads) + _add_extra(node["storage"], batch, d, n, threads)
    if kind == "ivf":
        block = min(batch, IVF_ADD_BLOCK)
        extra = block * 16 + 4096 * min(node["nlist"], 1024) * 4  # assignment, BLAS block
        if node["encoder"] == "sq":
            extra += block * node["code_size"]  # codes
        if node["encoder"] in ("pq", "pqfs"):
            pq_block = min(block, IVFPQ_ADD_BLOCK) if node["encoder"] == "pq" else block
            extra += block * node["code_size"] + _pq_encode_tables(node, d, pq_block)
            if node["by_residual"]:
                extra += pq_block * d * 4  # residuals
        return extra
    if kind == "pq":
        return _pq_encode_tables(node, d, min(batch, PQ_ENCODE_BLOCK))
    return 0


def _pq_encode_tables(node, d, block):
    """ProductQuantizer::compute_codes: with sub-vectors of 16 dimensions or
    more it first computes all distance tables, block x M x 2^nbits floats
    (2.1 GB for IVF-PQ's 32,768-vector blocks of PQ64 at d=1024)."""
    if d // node["M"] < 16:
        return 0
    return block * node["M"] * (1 << node["nbits"]) * 4


def vector_growth(steps):
    """Resident bytes of a std::vector grown by `steps` (bytes appended per resize).

    libstdc++ grows capacity to max(2 x size, new size), and resize() fills
    the new elements. Returns (end, peak): end = final capacity (what stays
    resident when the buffer lives on the heap), peak = the largest old buffer
    + filled part of the new one during a reallocation.
    """
    size = cap = peak = 0
    for step in steps:
        new = size + step
        if new > cap:
            peak = max(peak, size + new)
            cap = max(2 * size, new)
        size = new
    return cap, max(peak, size)


def _batches(n, batch):
    return [min(batch, n - i) for i in range(0, n, batch)]


def build_bytes(node, n, batch, lists_reserved=False, total=None):
    """(resident at end of build, peak) bytes of the index's own storage when n
    vectors are added in batches of `batch` by the build helper.

    The helper reserves the final size of flat code arrays and HNSW links
    (indexes.reserve), and of inverted lists when their sizes are known from a
    precomputed coarse assignment (lists_reserved), for `total` vectors
    (default n) from the first batch on. Inverted lists filled without that
    grow by doubling, so a freshly built index holds more than the same index
    read from disk.
    """
    total = total or n
    kind = node["kind"]
    if kind == "pretransform":
        fixed = sum(t["params_bytes"] for t in node["chain"])
        end, peak = build_bytes(node["index"], n, batch, lists_reserved, total)
        return fixed + end, fixed + peak
    if kind == "refine":
        e1, p1 = build_bytes(node["base"], n, batch, lists_reserved, total)
        e2, p2 = build_bytes(node["refine"], n, batch, lists_reserved, total)
        return e1 + e2, max(p1 + e2, e1 + p2)
    if kind == "hnsw":
        e1, p1 = build_bytes(node["storage"], n, batch, lists_reserved, total)
        links = total * 4 * node["slots_per_vector"] * HNSW_LINKS_RESERVE + n * (4 + 8)
        return e1 + links + node["ram_only_bytes"], p1 + links + node["ram_only_bytes"]
    if kind == "ivf":
        fixed = index_ram(node, 0)
        if lists_reserved:
            lists = total * (node["code_size"] + 8)
            return fixed + lists, fixed + lists
        blocks = [b for size in _batches(n, batch) for b in _batches(size, IVF_ADD_BLOCK)]
        per = (node["code_size"] + 8) / node["nlist"]  # one list, assuming balanced lists
        cap, _ = vector_growth([b * per for b in blocks])
        lists = cap * node["nlist"]
        return fixed + lists, fixed + lists
    size = node["params_bytes"] + total * node["code_size"]
    return size, size


def search_bytes(node, nq, k, nprobe=1, k_factor=1):
    """Temporary bytes while searching nq queries for k results each."""
    kind = node["kind"]
    results = nq * k * 12
    if kind == "pretransform":
        dout = node["chain"][-1]["d_out"]
        return nq * dout * 4 + search_bytes(node["index"], nq, k, nprobe, k_factor)
    if kind == "refine":
        kb = k * k_factor
        return search_bytes(node["base"], nq, kb, nprobe) + nq * kb * 12 + results
    if kind == "hnsw":
        return results  # visited tables (one byte per vector per thread) added by predict
    if kind == "ivf":
        return results + nq * nprobe * 12 + BLAS_BLOCK
    return results + BLAS_BLOCK


def _add_peak(node, n, d, add_batch, threads, preassigned):
    """(add peak, index bytes at that moment, batch bytes, temporaries). The build
    helper reads the next batch while faiss adds this one: while batch i is
    added, the index holds the rows before it (growing into room for batch i)
    and batches i and i + 1 are in memory."""
    sizes = _batches(n, add_batch)
    add_peak, row, peak_line = 0, 0, (0, 0, 0)
    for i, size in enumerate(sizes):
        end, peak = build_bytes(node, row + size, add_batch, preassigned, total=n)
        batches = (size + (sizes[i + 1] if i + 1 < len(sizes) else 0)) * d * 4
        extra = _add_extra(node, size, d, row + size, threads)
        if max(end, peak) + batches + extra > add_peak:
            add_peak = max(end, peak) + batches + extra
            peak_line = (max(end, peak), batches, extra)
        row += size
    return (add_peak, *peak_line)


def _preassigned_peak(node, n, final, add_peak, built_end, batch_bytes, add_extra):
    """The add peak with the shared assignment in memory (8 bytes a row) and, for
    fast-scan encoders, the conversion of the filled plain twin (both copies of
    the lists at once)."""
    add_peak, add_extra = add_peak + n * 8, add_extra + n * 8
    inner = inner_index(node)
    if inner["kind"] == "ivf" and inner["encoder"] in FAST_SCAN:
        convert = final + n * (inner["code_size"] + 8) + n * 8
        if convert > add_peak:
            add_peak, built_end, batch_bytes = convert, final, 0
            add_extra = n * (inner["code_size"] + 8) + n * 8
    return add_peak, built_end, batch_bytes, add_extra


def predict(factory, n, d, metric="L2", **options):
    """predict_tree for the factory string `factory` on n x d vectors."""
    return predict_tree(parse(factory, d, metric), n, **options)


def predict_tree(node, n, n_train=None, add_batch=ADD_BATCH, threads=None, nq=1000, k=10,
                 nprobe=16, k_factor=1, preassigned=False, build_budget=None):
    """Everything the model says about building the parsed factory `node`
    (factory_tree.parse: it holds the factory, d and metric) on n vectors.

    n_train: training-sample rows (default: what the build helper would use,
    capped so that training fits `build_budget` bytes when one is given);
    add_batch: rows read from disk and added at a time; threads: OpenMP
    threads (default: faiss's current setting); nq, k, nprobe, k_factor: a
    search batch. Returns a dict of bytes: index_ram, disk, build_peak,
    train_peak, add_peak, search, and 'lines' (label, bytes) explaining the
    build peak.
    """
    threads = threads or faiss.omp_get_max_threads()
    if n_train is None:  # the build helper's default, capped to fit build_budget
        n_train = default_train_size(node, n)
        if build_budget:
            n_train = capped_train_size(node, n_train, node["d"], build_budget)
    check_training(node, n_train)
    peak = _build_peaks(node, n, n_train, add_batch, threads, preassigned)
    visited = threads * n if inner_index(node)["kind"] == "hnsw" else 0  # a byte a vector a thread
    search = search_bytes(node, nq, k, nprobe, k_factor) + nq * node["d"] * 4 + visited
    return {
        "factory": node["factory"], "n": n, "d": node["d"], "metric": node["metric"],
        "n_train": n_train, "add_batch": add_batch, "threads": threads,
        "index_ram": int(peak["final"]), "disk": int(disk_bytes(node, n)),
        "train_peak": int(peak["train"]), "add_peak": int(peak["add"]),
        "build_peak": int(max(peak["train"], peak["add"])), "search": int(search),
        "lines": [
            ("training sample", int(peak["sample"])),
            ("training temporaries (k-means, encoder, transforms)", int(peak["train_extra"])),
            ("index when complete (as read from disk)", int(peak["final"])),
            ("index as built: growth slack (inverted lists grown batch by batch when no shared "
             "assignment gives their final sizes up front)", int(peak["slack"])),
            ("add batches read from disk (current + prefetched)", int(peak["batches"])),
            ("add temporaries (assignment, residuals, codes, HNSW locks)", int(peak["add_extra"])),
        ],
    }


def _build_peaks(node, n, n_train, add_batch, threads, preassigned):
    """The build's bytes: training sample, temporaries and peak; final index; add peak and parts."""
    d = node["d"]
    sample = n_train * d * 4
    train_extra = _train_extra(node, n_train, d)
    fixed = index_ram(node, 0)
    train_peak = sample + train_extra + fixed
    final = index_ram(node, n)
    add_peak, built_end, batch_bytes, add_extra = _add_peak(node, n, d, add_batch, threads, preassigned)
    if preassigned:
        add_peak, built_end, batch_bytes, add_extra = _preassigned_peak(
            node, n, final, add_peak, built_end, batch_bytes, add_extra)
        train_peak = max(train_peak, _assign_pass_peak(n, d, fixed))
    return {"sample": sample, "train_extra": train_extra, "train": train_peak, "final": final,
            "add": add_peak, "slack": max(0, built_end - final), "batches": batch_bytes,
            "add_extra": add_extra}


def _assign_pass_peak(n, d, fixed):
    """Bytes of the assignment pass: a block of rows, the next one, int64 ids, distances."""
    blocks = min(n, ASSIGN_BLOCK) + min(max(n - ASSIGN_BLOCK, 0), ASSIGN_BLOCK)
    return blocks * d * 4 + n * 8 + BLAS_BLOCK + fixed


def default_train_size(node, n):
    """Training-sample rows the build helper uses by default: 64 points per
    IVF centroid (faiss wants 39 to 256), 39 from LARGE_NLIST up (a k-means
    iteration costs n_train x nlist x d: 39 x 16384 rows in a 256-d PCA space
    is ~5 TFLOP an iteration, minutes on 2 cores), and at least 65,536 for
    encoders, within n. More points per centroid barely move recall but cost
    RAM: at d=1024, 256 per centroid for nlist=65536 would be a 69 GB sample."""
    inner = inner_index(node)
    want = ENCODER_TRAIN_MAX
    if inner["kind"] == "ivf":
        want = max(want, per_centroid(inner["nlist"]) * inner["nlist"])
    return min(n, want)


def capped_train_size(node, n_train, d, build_budget):
    """n_train, halved while the sample and training temporaries exceed
    build_budget bytes, down to 39 points per centroid (IVF k-means, or a PQ
    sub-quantizer's 2^nbits): a small budget trains on less rather than
    refusing an index that would itself be small."""
    floor = min(n_train, MIN_PER_CENTROID * max(_centroids(node), 1))
    fixed = index_ram(node, 0)
    while n_train > floor and n_train * d * 4 + _train_extra(node, n_train, d) + fixed > build_budget:
        n_train = max(floor, n_train // 2)
    return n_train


def _centroids(node):
    """The most centroids any k-means of `node`'s training computes."""
    kind = node["kind"]
    if kind == "pretransform":
        return _centroids(node["index"])
    if kind == "refine":
        return max(_centroids(node["base"]), _centroids(node["refine"]))
    if kind == "hnsw":
        return _centroids(node["storage"])
    if kind == "pq":
        return 1 << node["nbits"]
    if kind == "ivf":
        pq = 1 << node["nbits"] if node["encoder"] in ("pq", "pqfs") else 0
        return max(node["nlist"], pq)
    return 0


def check_training(node, n_train):
    """Refuse a training sample too small for the index's centroids."""
    inner = inner_index(node)
    if inner["kind"] == "ivf" and n_train < inner["nlist"]:
        raise ValueError(
            f"training sample of {n_train} vectors is smaller than nlist="
            f"{inner['nlist']} centroids: k-means cannot run. Use at least "
            f"{MIN_PER_CENTROID * inner['nlist']:,} training vectors "
            f"({MIN_PER_CENTROID} per centroid) or a smaller nlist."
        )


def min_train_size(node):
    """Fewest training vectors without faiss's 'please provide at least
    39 x k points' warning, for the largest k-means in the index: the IVF's
    nlist centroids or a PQ's 2^nbits per sub-quantizer (9,984 for 8 bits)."""
    return MIN_PER_CENTROID * _centroids(node)


def fits(prediction, ram_budget, disk_budget=math.inf, build_budget=None):
    """Reasons (list of str) why a predicted build does not fit; [] if it fits.

    ram_budget: bytes the finished index may use when serving; build_budget:
    bytes the build may use (default: ram_budget); disk_budget: bytes of file.
    """
    build_budget = build_budget or ram_budget
    reasons = []
    if prediction["build_peak"] > build_budget:
        reasons.append(f"build peak {format_bytes(prediction['build_peak'])} > build budget "
                       f"{format_bytes(build_budget)}")
    if prediction["index_ram"] > ram_budget:
        reasons.append(f"index {format_bytes(prediction['index_ram'])} > RAM budget "
                       f"{format_bytes(ram_budget)}")
    if prediction["disk"] > disk_budget:
        reasons.append(f"index file {format_bytes(prediction['disk'])} > disk budget "
                       f"{format_bytes(disk_budget)}")
    return reasons
