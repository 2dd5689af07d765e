"""Building indexes from disk-resident data: creation, training, batched adds."""

import faiss

from .dataset import faiss_metric


def new_index(factory, d, metric="L2"):
    """faiss.index_factory(d, factory, metric) with training set up for speed.

    The factory turns on polysemous training for PQ codes with 8 bits. It
    only serves polysemous Hamming filtering at search time (not used here)
    and costs about 2 s per sub-quantizer whatever the sample size, so it is
    switched off.
    """
    from .memory import FactoryError, _explain

    try:
        index = faiss.index_factory(d, factory, faiss_metric(metric))
    except RuntimeError as e:
        raise FactoryError(_explain(factory, d, str(e))) from None
    for sub in _components(index):
        if hasattr(sub, "do_polysemous_training"):
            sub.do_polysemous_training = False
    return index


def _components(index):
    """The index and every index nested in it (pre-transform, refine, HNSW, IVF)."""
    index = faiss.downcast_index(index)
    out = [index]
    for attr in ("index", "base_index", "refine_index", "storage", "quantizer"):
        child = getattr(index, attr, None)
        if isinstance(child, faiss.Index):
            out += _components(child)
    return out
