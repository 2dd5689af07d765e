"""The values faiss takes, checked before faiss sees them, and the one parser of search
settings ("nprobe=16,k_factor_rf=4"): one place for the runner
(before any kernel starts), build_index, measure and the search settings that
evaluate.set_parameters applies (and so the widgets).

Why up front: faiss aborts the whole process, a notebook's kernel, on values a
Python caller can pass. ParameterSpace stores nprobe, efSearch, efConstruction
and k_factor_rf with `int(val)` (AutoTune.cpp), so 10**12 wraps to a negative
count; nprobe 0 fails the coarse search's assertion 'k > 0'; a negative or huge
count allocated inside an OpenMP loop throws std::length_error, which no Python
code can catch. Each refusal is one line naming the parameter, its value and
its range.
"""

import faiss

INT_MAX = 2**31 - 1  # a C int: what ParameterSpace and faiss's HNSW store
IDX_MAX = 2**63 - 1  # faiss's idx_t: row counts and batch sizes

# name: (smallest, largest): whole numbers in faiss's C types. The runner also
# bounds some by the run's rows (RELATIVE), and clips nprobe at nlist.
RANGES = {
    # search settings ("nprobe=16,k_factor_rf=4")
    "nprobe": (1, INT_MAX), "efSearch": (1, INT_MAX), "quantizer_efSearch": (1, INT_MAX),
    "k_factor_rf": (1, INT_MAX), "qb": (0, 8), "ht": (0, INT_MAX),
    # notebook parameters (helpers.config)
    "max_nprobe": (1, INT_MAX), "cap_nprobe": (0, INT_MAX), "slider_nprobe": (1, INT_MAX),
    "ef_search": (1, INT_MAX), "slider_ef_search": (1, INT_MAX), "screen_ef_search": (1, INT_MAX),
    "ef_construction": (1, INT_MAX), "ef_construction_values": (1, INT_MAX),
    "m_values": (2, INT_MAX),  # HNSW1 has no level multiplier (1 / log M)
    "k_factors": (1, INT_MAX), "screen_k_factors": (1, INT_MAX), "rerank_k_factors": (1, INT_MAX),
    "nlist": (1, INT_MAX), "large_nlist": (1, INT_MAX), "screen_nprobe_divisors": (1, INT_MAX),
    "k": (1, INT_MAX), "gt_k": (1, INT_MAX), "exact_depths": (1, INT_MAX),
    "n": (1, IDX_MAX), "n_queries": (0, IDX_MAX), "n_train": (0, IDX_MAX),
    "screen_rows": (0, IDX_MAX), "sensitivity_n": (1, IDX_MAX), "time_sample_rows": (1, IDX_MAX),
    "target_n": (0, IDX_MAX), "max_rows": (0, IDX_MAX), "single_queries": (1, IDX_MAX),
    "repeats": (1, INT_MAX), "add_batch": (1, IDX_MAX), "chunk_rows": (1, IDX_MAX),
    "d": (1, INT_MAX), "threads": (0, INT_MAX),
}

# name: (the parameter whose value bounds it from above, why) within a run. (nlist
# within the rows is the runner's own check, profile.min_rows, with every index's need.)
RELATIVE = {
    "k": ("gt_k", "recall@k needs the k exact neighbours the ground truth keeps"),
    "gt_k": ("n", "there are no more neighbours than rows"),
    "n_train": ("n", "training rows come from the dataset"),
}


class OutOfRange(ValueError):
    """A parameter faiss cannot take; the message is one line."""


def check(name, value, low=None, high=None, why=""):
    """`value` if it is a whole number in [low, high] (default: RANGES[name]), else
    raise OutOfRange naming the parameter, the value and the range."""
    default_low, default_high = RANGES.get(name, (1, IDX_MAX))
    low = default_low if low is None else low
    high = default_high if high is None else high
    whole = (isinstance(value, int) and not isinstance(value, bool)) or \
        (hasattr(value, "dtype") and value.dtype.kind in "iu")  # numpy integers too
    if not whole or not low <= value <= high:
        raise OutOfRange(f"{name}={value!r} is invalid: it must be a whole number from {low:,} to "
                         f"{high:,}{' (' + why + ')' if why else ''}")
    return value


def check_parameters(params, rows):
    """Check one notebook's parameters ({name: value}, a list or a dict of values
    for some) against RANGES and RELATIVE (rows: the run's database rows); clip
    nprobe at nlist. Returns (params, the notes of what was clipped)."""
    params, notes = dict(params), []
    for name, value in params.items():
        if name == "sensitivity_setting":
            for key, v in value.items():
                check(key, v)
        elif name in RANGES:
            for v in value if isinstance(value, list) else [value]:
                check(name, v)
        if name in RELATIVE:
            bound, why = RELATIVE[name]
            limit = rows if bound == "n" else params.get(bound)
            if limit is not None:
                check(name, value, high=limit, why=f"{bound}={limit:,}: {why}")
    if params.get("n_queries") == 0 and not params.get("base_path"):
        raise OutOfRange("n_queries=0 is invalid: generated data needs at least 1 query (0 is "
                         "for your own vectors with a queries file)")
    if "nprobe" in params and "nlist" in params and params["nprobe"] > params["nlist"]:
        notes.append(f"nprobe={params['nprobe']:,} is more than nlist={params['nlist']:,}: "
                     f"it is clipped to {params['nlist']:,}, every list")
        params["nprobe"] = params["nlist"]
    return params, notes


def parse_setting(setting):
    """"nprobe=128,k_factor_rf=64" -> {"nprobe": "128", "k_factor_rf": "64"} (str -> str,
    in order); "" -> {}."""
    values = {}
    for part in filter(None, setting.split(",")):
        name, eq, value = part.partition("=")
        if not (eq and name and value):
            raise ValueError(f"search setting {setting!r}: {part!r} is not name=value; "
                             f"write settings like 'nprobe=128,k_factor_rf=64'")
        values[name] = value
    return values


def format_setting(values):
    """parse_setting's inverse: {"nprobe": 128} -> "nprobe=128"."""
    return ",".join(f"{name}={value}" for name, value in values.items())


def check_setting(index, values):
    """Check search settings ({"nprobe": "16", ...}, strings as parse_setting gives
    them) for `index`; nprobe beyond nlist, efSearch beyond the graph's vectors and
    quantizer_efSearch beyond the coarse lists are clipped to them. Returns
    ({name: int}, notes on what was clipped)."""
    out, notes = {}, []
    for name, text in values.items():
        try:
            value = int(text)
        except ValueError:
            raise OutOfRange(f"{name}={text!r} is invalid: it must be a whole number") from None
        out[name] = check(name, value) if name in RANGES else value
    for name, most, what in _ceilings(index):
        if name in out and out[name] > most:
            notes.append(f"{name}={out[name]:,} is more than this index's {most:,} {what}: "
                         f"clipped to {most:,}")
            out[name] = most
    return out, notes


def _ceilings(index):
    """(setting, largest useful value, what it counts) for `index`."""
    out = []
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        ivf = None
    if ivf is not None:
        out += [("nprobe", ivf.nlist, "lists"), ("quantizer_efSearch", ivf.nlist, "lists")]
    elif index.ntotal:
        out.append(("efSearch", index.ntotal, "vectors"))
    return out
