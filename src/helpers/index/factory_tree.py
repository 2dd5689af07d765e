"""What a factory string builds: the one place where facts about it are read.

The string is parsed by ``faiss.index_factory`` on an empty index (which
allocates almost nothing); the resulting object tree is turned into a dict
tree of facts: kind, code sizes, nlist, PQ shape, HNSW level probabilities
and neighbour counts, transform sizes, fast-scan search defaults.
helpers.index.memory computes sizes from it, helpers.index.indexes builds from it.

An IVF factory string also splits into a *coarse space* (pre-transforms and
the IVF quantizer: "PCAR256,IVF16384_HNSW32") and what is stored per vector
("PQ64x4fs,Refine(SQ8)"); a fast-scan code has a plain *twin* that
preassigned adds can fill (helpers.index.indexes). These are facts of the
string's parts, read here without faiss.
"""

import re

import faiss

from ..data.dataset import faiss_metric


_IVF = re.compile(r"IVF\d+(_HNSW\d+)?")
_FAST_SCAN = {re.compile(r"(PQ\d+x4)fsr?"): r"\1", re.compile(r"RaBitQfs(\d*)"): r"RaBitQ\1"}


class FactoryError(ValueError):
    """A factory string faiss cannot parse, or that this model does not cover."""


def parse(factory, d, metric="L2"):
    """Describe the index `factory` builds for dimension d, as a dict tree.

    Raises FactoryError naming the part faiss could not understand, or a
    size faiss accepts but that makes no index (IVF0, HNSW0 or HNSW1).
    """
    for name, low in (("IVF", 1), ("HNSW", 2), ("PQ", 1)):
        for m in re.finditer(rf"(?<![A-Za-z]){name}(\d+)", factory):
            if int(m.group(1)) < low:
                raise FactoryError(f"{factory!r}: {name}{m.group(1)} is invalid: {name}'s "
                                   f"number must be >= {low}")
    try:
        index = faiss.index_factory(d, factory, faiss_metric(metric))
    except RuntimeError as e:
        raise FactoryError(explain_factory_error(factory, d, str(e))) from None
    node = _describe(index, d)
    node["factory"] = factory
    node["metric"] = metric
    return node


def explain_factory_error(factory, d, msg):
    m = re.search(r"could not parse (.*?) in " + re.escape(factory), msg)
    if m:
        return f"cannot parse factory string {factory!r}: faiss could not parse {m.group(1)}"
    m = re.search(r"could not parse index string (.*)", msg)
    if m:
        return f"cannot parse factory string {factory!r}: {m.group(1).strip()!r} is not a known index type"
    if "multiple of the number of subquantizers" in msg:
        coded = coded_dimension(factory, d)
        where = f"d={d}" if coded == d else f"the {coded} dimensions its transform leaves"
        divisors = [m for m in range(1, coded + 1) if coded % m == 0 and m <= 256]
        return f"{factory!r}: the PQ's m must divide {where}; valid m: {divisors[-12:]}"
    return f"cannot build {factory!r} for d={d}: {msg.strip().splitlines()[-1]}"


def coded_dimension(factory, d):
    """The dimension the codes of `factory` see: d after its leading transforms
    (PCAR256, OPQ16_64, RR128 leave their number; OPQ16 keeps d)."""
    for part in factory.split(","):
        m = re.fullmatch(r"(?:PCAW?R?|OPQ\d+_|RR)(\d+)", part)
        if m:
            d = int(m.group(1))
    return d


def _vt_desc(vt):
    vt = faiss.downcast_VectorTransform(vt)
    name = type(vt).__name__
    d_in, d_out = vt.d_in, vt.d_out
    params = d_in * d_out * 4 + d_out * 4  # A and b of a LinearTransform
    if name == "PCAMatrix":
        params += d_in * d_in * 4 + 2 * d_in * 4  # PCAMat, mean, eigenvalues
    out = {"kind": name, "d_in": d_in, "d_out": d_out, "params_bytes": params}
    if name == "OPQMatrix":
        out["M"] = vt.M
    return out


def _describe_ivf(index, d, name):
    """An IVF index's node: nlist, code size, quantizer and encoder facts."""
    node = {"kind": "ivf", "nlist": index.nlist, "code_size": index.code_size,
            "quantizer": _describe(index.quantizer, d), "d": d,
            "by_residual": bool(index.by_residual), "encoder": "flat",
            "encoder_params_bytes": 0, "precomputed_table_bytes": 0}
    if isinstance(index, faiss.IndexIVFPQFastScan):
        node.update(encoder="pqfs", M=index.pq.M, nbits=index.pq.nbits,
                    encoder_params_bytes=index.pq.centroids.size() * 4)
        if index.by_residual and index.metric_type == faiss.METRIC_L2:
            node["precomputed_table_bytes"] = index.nlist * index.pq.M * index.pq.ksub * 4
    elif isinstance(index, faiss.IndexIVFPQ):
        node.update(encoder="pq", M=index.pq.M, nbits=index.pq.nbits,
                    encoder_params_bytes=index.pq.centroids.size() * 4)
        table = index.nlist * index.pq.M * index.pq.ksub * 4
        if (index.by_residual and index.metric_type == faiss.METRIC_L2
                and table <= faiss.cvar.precomputed_table_max_bytes):
            node["precomputed_table_bytes"] = table
    elif isinstance(index, faiss.IndexIVFScalarQuantizer):
        node.update(encoder="sq", encoder_params_bytes=2 * d * 4)
    elif isinstance(index, faiss.IndexIVFRaBitQFastScan):
        node.update(encoder="rabitqfs", qb=index.qb)  # 1-bit codes + per-vector factors, in blocks
    elif isinstance(index, faiss.IndexIVFRaBitQ):
        node.update(encoder="rabitq", qb=index.qb)
    elif not isinstance(index, faiss.IndexIVFFlat):
        raise FactoryError(f"the memory model does not cover {name} yet")
    return node


def _describe(index, d):
    """Walk a faiss index object into plain dicts (keeps no faiss objects)."""
    index = faiss.downcast_index(index)
    name = type(index).__name__
    if isinstance(index, faiss.IndexPreTransform):
        chain = [_vt_desc(index.chain.at(i)) for i in range(index.chain.size())]
        return {"kind": "pretransform", "chain": chain,
                "index": _describe(index.index, chain[-1]["d_out"]), "d": d}
    if isinstance(index, faiss.IndexRefineFlat):
        return {"kind": "refine", "base": _describe(index.base_index, d),
                "refine": {"kind": "flat", "code_size": d * 4, "d": d, "params_bytes": 0}, "d": d}
    if isinstance(index, faiss.IndexRefine):
        return {"kind": "refine", "base": _describe(index.base_index, d),
                "refine": _describe(index.refine_index, d), "d": d}
    if isinstance(index, faiss.IndexHNSW):
        cum = faiss.vector_to_array(index.hnsw.cum_nneighbor_per_level)
        storage = _describe(index.storage, d)
        sdc = 0
        if storage["kind"] == "pq":  # IndexHNSWPQ keeps the PQ's symmetric table (not saved)
            sdc = storage["M"] * (1 << storage["nbits"]) ** 2 * 4
        return {"kind": "hnsw", "M": int(cum[1] // 2), "slots_per_vector": slots_per_vector(index.hnsw),
                "storage": storage, "d": d, "ram_only_bytes": sdc}
    if isinstance(index, faiss.IndexIVF):
        return _describe_ivf(index, d, name)
    if isinstance(index, faiss.IndexFlatCodes) or isinstance(index, faiss.IndexFlat):
        kind = {"IndexPQ": "pq", "IndexScalarQuantizer": "sq"}.get(name, "flat")
        node = {"kind": kind, "code_size": index.code_size, "d": d, "params_bytes": 0}
        if kind == "pq":
            node.update(M=index.pq.M, nbits=index.pq.nbits,
                        params_bytes=index.pq.centroids.size() * 4)
        elif kind == "sq":
            node["params_bytes"] = 2 * d * 4
        elif name not in ("IndexFlat", "IndexFlatL2", "IndexFlatIP"):
            raise FactoryError(f"the memory model does not cover {name} yet")
        return node
    raise FactoryError(f"the memory model does not cover {name} yet")


def slots_per_vector(hnsw):
    """Neighbour slots faiss allocates per vector of an HNSW graph, on average over
    the levels its random level draw gives (float)."""
    probas = faiss.vector_to_array(hnsw.assign_probas)
    cum = faiss.vector_to_array(hnsw.cum_nneighbor_per_level)
    return float(sum(p * cum[level + 1] for level, p in enumerate(probas)))


def inner_index(node):
    """The index under pre-transforms and refinement (the one with the IVF / HNSW)."""
    while node["kind"] in ("pretransform", "refine"):
        node = node["index"] if node["kind"] == "pretransform" else node["base"]
    return node


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


def preassignable(factory):
    """Whether `factory` can be filled from a shared coarse assignment: an IVF
    whose codes are not fast-scan behind an exact RFlat (whose codes it cannot
    share with the twin)."""
    space, rest = split_factory(factory)
    return space is not None and not (twin_factory(factory) and rest.endswith("RFlat"))


def coarse_factory(factory):
    """The coarse space of an IVF factory string that can be shared
    ("IVF4096,PQ64,Refine(SQ8)" -> "IVF4096", "PCAR256,IVF16384_HNSW32,RaBitQfs"
    -> "PCAR256,IVF16384_HNSW32"); None for anything else (HNSW, Flat, or a
    family preassignable refuses)."""
    return split_factory(factory)[0] if preassignable(factory) else None
