"""Every notebook parameter once: its default and meaning, and which notebooks take it.

The notebooks' parameters cells hold the same plain literals (papermill injects
over them; tests/test_config.py asserts they equal DEFAULTS), so a notebook
opened by hand runs with these values. PRESETS are flat
overrides of them; the runner reads the defaults here, never the notebooks.
"""

# The codes every preset screens in each coarse space (each with a full-dimension SQ8
# refine): 4-bit fast-scan PQ with 64, 128 and 256 sub-quantizers (the 10M answer's
# is PQ256x4fs) and RaBitQ's 1-bit codes, fast-scan, 4-bit and plain. Where d does not
# allow one (PQ256 on 64 dimensions), its verdict says so.
SCREEN_CODES = ["PQ64x4fs", "RaBitQfs", "PQ128x4fs", "RaBitQ4", "PQ256x4fs", "RaBitQ"]

# name: (default, meaning)
PARAMETERS = {
    'add_batch': (16384, 'rows added per batch, streamed from disk'),
    'base_path': ('', 'your vectors (file or folder); "": generate synthetic data'),
    'build_budget': ('', 'memory a build may use, e.g. "20G"; "": available now'),
    'build_time_budget': ('', 'a finalist\'s build at target_n may take this long (estimated); "": any'),
    'cap_nprobe': (0, 'nprobe of the "codes\' error" table; 0: every list'),
    'check_factories': (['IVF64,PQ64', 'IVF64,SQ8', 'HNSW16,SQ8'], 'families built in a fresh process to compare measured memory with the model'),
    'chunk_rows': (16384, 'rows generated, written and checksummed at a time'),
    'cluster_std': (1.2, 'spread within a latent cluster, relative to the spread of the centres'),
    'column': ('embedding', 'parquet: the column holding the vectors'),
    'compare_storage': ('SQ8', 'storage of the HNSW M x efConstruction grid'),
    'd': (1024, 'dimension of the vectors'),
    'data_dir': ('../data/small', 'the dataset folder (helpers.pipeline.run sets it)'),
    'disk_budget': ('', 'disk the index folder may hold, e.g. "22G"; "": the free disk'),
    'ef_construction': (40, "HNSW's search depth while inserting"),
    'ef_construction_values': ([40, 120], 'efConstruction values of the HNSW grid'),
    'ef_search': (64, "HNSW's search depth in the grid's measurements"),
    'exact_depths': ([2, 5], 'the final stage re-ranks k x each of these candidates exactly'),
    'factory': ('IVF{nlist},SQ8', 'plain IVF: Flat, SQ or 8-bit PQ codes'),
    'finalists': (2, 'families the full-scale notebooks build'),
    'force': (False, 'regenerate the data and ground truth even if they exist'),
    'gt_k': (100, 'exact neighbours kept per query'),
    'high_target_recall': (0.99, 'the second goal, met with an exact final stage read from disk'),
    'hnsw_quantizer_factory': ('IVF{large_nlist}_HNSW32,PQ128x4fs', '"": skip this section'),
    'include': ([], 'index names to sweep; empty: all built from this dataset'),
    'index_dir': ('../data/small/indexes', 'where indexes are written (helpers.pipeline.run sets it)'),
    'intrinsic_dim': (64, "the synthetic data's latent dimension"),
    'k': (10, 'neighbours returned per query (recall@k)'),
    'k_factors': ([1, 4, 16, 64, 256], 'refine depths swept: k_factor x k candidates re-ranked'),
    'layers_rows': (100_000, "rows the 10M answer's stand-in and its variants are built on (03)"),
    'large_nlist': (256, 'nlist of the HNSW-coarse-quantizer section'),
    'm_values': ([16, 32], 'HNSW M values of the grid'),
    'max_nprobe': (256, 'largest nprobe swept'),
    'max_rows': (0, 'explore a random subset of this many of your rows; 0: all'),
    'metric': ('IP', 'your vectors: "l2", "ip" or "cosine"'),
    'n': (20000, 'database rows to generate'),
    'n_clusters': (1024, 'latent clusters of the synthetic data'),
    'n_queries': (500, 'query rows (generated, or held out of your vectors)'),
    'n_train': (0, 'rows copied to a separate train.npy; 0: none'),
    'nlist': (64, 'inverted lists of the IVF families ({nlist} in factory strings)'),
    'noise': (0.6, "the synthetic data's noise norm over its signal norm"),
    'normalize': (True, 'L2-normalise the synthetic vectors (cosine / inner product)'),
    'nprobe': (16, 'lists scanned per query where one value is shown'),
    'ondisk_factory': ('IVF{nlist},PQ64', 'index whose loads are compared read, mapped and with on-disk lists'),
    'ondisk_lists': (True, 'also measure on-disk inverted lists (a second copy of the lists on disk)'),
    'plan_factory': ('IVF{nlist},SQ8', 'family of the 100M / 1B scale-out plan'),
    'plan_n': ([100000000, 1000000000], 'rows of the scale-out plan'),
    'plan_only': ([], 'factories planned (memory, time) but not built here'),
    'plan_shards_per_worker': (4, 'shards each worker builds in the plan'),
    'plan_workers': ([8, 32], 'machines of the scale-out plan'),
    'progress': (True, 'progress bars while generating'),
    'queries_path': ('', 'your queries; "": hold out n_queries random rows of base_path'),
    'ram_budget': ('', 'memory the index may use when serving, e.g. "16G"; "": available now'),
    'repeats': (5, 'timed batches per frontier setting (median, min, max)'),
    'rerank_factory': ('IVF{nlist},PQ128x4fs', 'index whose candidates are re-ranked from the vectors on disk'),
    'rerank_k_factors': ([1, 2, 4, 8, 16], 'candidates per result re-ranked from disk'),
    'results_dir': ('', 'set by helpers.pipeline.run to collect key results'),
    'scheduler': ('', 'a Dask scheduler address; "": a LocalCluster here'),
    'screen_codes': (SCREEN_CODES, 'codes tried in each space'),
    'screen_ef_search': ([32, 64, 128], 'efSearch values the screening sweeps for HNSW families'),
    'screen_hnsw': ([['HNSW32,SQ8', 100]], '[factory, efConstruction] graphs tried'),
    'screen_k_factors': ([4, 16, 64], 'refine depths: k_factor x k candidates re-ranked'),
    'screen_nprobe_divisors': ([64, 32, 16, 8, 4], 'nprobe is nlist / each: a share of the lists'),
    'screen_refine': ('Refine(SQ8)', 'every IVF candidate re-ranks with full-dimension SQ8'),
    'screen_rows': (20000, 'rows each candidate family is built and swept on; 0: no screening'),
    'screen_spaces': (['IVF128', 'PCAR256,IVF512', 'IVF512_HNSW32'], 'coarse spaces tried'),
    'screen_time_budget': ('', 'stop starting new candidates after this long, e.g. "40min"; "": none'),
    'seed': (1234, "the synthetic data's master seed"),
    'sensitivity_d': (128, "dimension of the sensitivity study's data"),
    'sensitivity_dims': ([16, 64], "its intrinsic dimension (64 is this dataset's)"),
    'sensitivity_factory': ('IVF64,PQ32x4fs,Refine(SQ8)', 'a small stand-in of the family'),
    'sensitivity_n': (20000, 'rows of each dataset of the sensitivity study'),
    'sensitivity_noises': ([0.3, 0.6, 0.9], "the generator's noise (0.6 is this dataset's)"),
    'sensitivity_setting': ({'nprobe': 8, 'k_factor_rf': 16}, 'search setting of the sensitivity study'),
    'shards': (8, 'row ranges the sharded build splits the dataset into'),
    'single_queries': (500, 'distinct queries timed one by one, per frontier setting'),
    'slider_ef_search': (128, "efSearch the explorer's slider is set to under papermill"),
    'slider_nprobe': (32, 'slider values set programmatically under papermill'),
    'storage_dtype': ('float32', 'float32 or float16 storage of generated vectors'),
    'target_n': (10000000, "rows you will build for (recommended.json); 0: this dataset's"),
    'target_recall': (0.95, 'the screening keeps the fastest families that reach it'),
    'threads': (0, "0: faiss's default"),
    'time_builds': (True, "time each plan row's build on a sample"),
    'time_sample_rows': (2000, 'rows of the samples build times are measured on'),
    'workers': (0, 'LocalCluster processes; 0: one per core'),
}

# parameters whose default differs per notebook
PER_NOTEBOOK = {'03_build_ivfpq': {'factories': ['IVF{nlist},PQ16',
                                  'IVF{nlist},PQ64',
                                  'IVF{nlist},PQ128x4fs',
                                  'IVF{nlist},PQ64,Refine(SQ8)',
                                  'IVF{nlist},PQ128x4fs,RFlat']},
 '04_build_hnsw': {'factories': ['HNSW32,Flat', 'HNSW32,SQ8', 'HNSW32,PQ128']},
 '05_build_ivfsq': {'factories': ['IVF{nlist},SQ8', 'IVF{nlist},SQ4', 'IVF{nlist},SQfp16']}}

# the parameters each notebook's parameters cell declares, in its order
DECLARED = {'01_data_generation': ['data_dir', 'n', 'd', 'n_queries', 'n_train', 'metric', 'normalize',
                        'storage_dtype', 'intrinsic_dim', 'n_clusters', 'cluster_std', 'noise',
                        'seed', 'chunk_rows', 'gt_k', 'base_path', 'queries_path', 'column',
                        'max_rows', 'progress', 'force', 'results_dir'],
 '02_memory_budget': ['target_n', 'd', 'metric', 'ram_budget', 'build_budget', 'disk_budget',
                      'threads', 'data_dir', 'check_factories', 'time_builds',
                      'time_sample_rows', 'target_recall', 'screen_rows', 'screen_spaces',
                      'screen_codes', 'screen_refine', 'screen_hnsw', 'screen_nprobe_divisors',
                      'screen_k_factors', 'screen_ef_search', 'screen_time_budget',
                      'build_time_budget', 'finalists', 'results_dir'],
 '03_build_ivfpq': ['data_dir', 'index_dir', 'target_n', 'ram_budget', 'build_budget', 'disk_budget',
                    'threads',
                    'n_train', 'add_batch', 'nlist', 'large_nlist', 'k', 'gt_k', 'nprobe',
                    'max_nprobe', 'cap_nprobe', 'repeats', 'single_queries', 'factories',
                    'hnsw_quantizer_factory', 'rerank_factory', 'rerank_k_factors',
                    'ondisk_factory', 'ondisk_lists', 'layers_rows', 'force', 'results_dir'],
 '04_build_hnsw': ['data_dir', 'index_dir', 'target_n', 'ram_budget', 'build_budget', 'threads',
                   'add_batch', 'k', 'gt_k', 'factories', 'plan_only', 'ef_construction',
                   'compare_storage', 'm_values', 'ef_construction_values', 'ef_search',
                   'repeats', 'single_queries', 'time_sample_rows', 'force', 'results_dir'],
 '05_build_ivfsq': ['data_dir', 'index_dir', 'target_n', 'ram_budget', 'build_budget', 'threads',
                    'n_train', 'add_batch', 'nlist', 'k', 'gt_k', 'nprobe', 'max_nprobe',
                    'repeats', 'single_queries', 'time_sample_rows', 'cap_nprobe', 'ondisk_lists',
                    'factories', 'force', 'results_dir'],
 '06_recall_vs_latency': ['data_dir', 'index_dir', 'k', 'gt_k', 'target_recall',
                          'high_target_recall', 'exact_depths', 'sensitivity_factory',
                          'sensitivity_setting', 'sensitivity_noises', 'sensitivity_dims',
                          'sensitivity_n', 'sensitivity_d', 'ram_budget', 'build_budget',
                          'threads', 'repeats', 'max_nprobe', 'k_factors', 'single_queries',
                          'include', 'slider_nprobe', 'slider_ef_search', 'target_n',
                          'results_dir'],
 '07_beyond_one_machine': ['data_dir', 'index_dir', 'nlist', 'factory', 'shards', 'workers',
                           'scheduler', 'k', 'gt_k', 'nprobe', 'repeats', 'single_queries',
                           'threads', 'plan_n', 'plan_workers', 'plan_shards_per_worker',
                           'plan_factory', 'results_dir']}


def defaults(notebook):
    """{parameter: default} of `notebook` ("03_build_ivfpq")."""
    return {k: PER_NOTEBOOK.get(notebook, {}).get(k, PARAMETERS[k][0] if k in PARAMETERS else None)
            for k in DECLARED[notebook]}


# What the 1m and full presets search: the coarse spaces, the codes tried in each
# (all with a full-dimension SQ8 refine), the HNSW graphs, and the sweep's grid.
SCREEN_SEARCH = {
    "spaces": ["IVF4096", "PCAR256,IVF16384", "IVF16384_HNSW32", "PCAR256,IVF65536_HNSW32"],
    "codes": SCREEN_CODES,
    "refine": "Refine(SQ8)",
    # graphs on PCA-reduced vectors, refined on full ones: a full-dimension graph
    # inserts too slowly at d = 1024 (HNSW32,SQ8 at efConstruction 40 took 116 min for the
    # last 8.8M of its 10M rows alone, more than a PCA graph at 100: benchmarks/README.md),
    # so it is left out
    "hnsw": [["PCAR128,HNSW32,Refine(SQ8)", 100], ["PCAR128,HNSW48,Refine(SQ8)", 100],
             ["PCAR256,HNSW32,Refine(SQ8)", 100], ["PCAR256,HNSW32,SQ8,Refine(SQ8)", 100]],
    # nprobe as a share of nlist (nlist // each): the same share of the rows scanned
    # whatever nlist, so a larger nlist is tried at the depths where it can compete
    "nprobe_divisors": [256, 128, 64, 32, 16],
    "k_factor_rf": [16, 64, 256],  # 4-bit codes at d = 1024 need deep re-ranking for 0.95
    "ef_search": [32, 64, 128, 256, 512],  # a PCA-reduced graph needs 512 to clear 0.95 at 1M
}


# how long one finalist's build at 10M may take (projected): the 1m and full presets' verdicts
FINALIST_BUILD_BUDGET = "45min"


def screen_params(search=SCREEN_SEARCH, rows=1_000_000):
    """Notebook 02's screening parameters for `search` on `rows` rows (presets, profiles)."""
    return {"screen_rows": rows, "screen_spaces": search["spaces"], "screen_codes": search["codes"],
            "screen_refine": search["refine"], "screen_hnsw": search["hnsw"],
            "screen_nprobe_divisors": search["nprobe_divisors"],
            "screen_k_factors": search["k_factor_rf"],
            "screen_ef_search": search["ef_search"]}


ORDER = ["01_data_generation", "02_memory_budget", "03_build_ivfpq", "04_build_hnsw",
         "05_build_ivfsq", "06_recall_vs_latency", "07_beyond_one_machine"]

# Per preset: "all" goes to every notebook that declares the parameter; the
# notebook names carry what only that notebook takes. data_dir, index_dir,
# results_dir and force are filled in by the runner.
PRESETS = {
    "tiny": {
        "all": {"d": 64, "gt_k": 20, "nlist": 16, "nprobe": 4, "n_train": 1500, "add_batch": 1000},
        "01_data_generation": {"n": 3000, "n_queries": 50, "n_train": 1000, "intrinsic_dim": 16,
                               "n_clusters": 32, "chunk_rows": 1024, "progress": False},
        "02_memory_budget": {"target_n": 1_000_000, "check_factories": ["IVF16,SQ8"],
                             "time_sample_rows": 500, "target_recall": 0.9, "screen_rows": 3000,
                             "screen_spaces": ["IVF16", "PCAR32,IVF32"],
                             "screen_codes": SCREEN_CODES,
                             "screen_hnsw": [["HNSW16,SQ8", 40]], "screen_nprobe_divisors": [8, 4, 2],
                             "screen_k_factors": [4, 16], "screen_ef_search": [16, 32],
                             "screen_time_budget": "2min", "build_time_budget": "1min",
                             # every family that reaches the target: a set that timing noise
                             # cannot change, so a resumed run rebuilds the same indexes
                             "finalists": 10},
        "03_build_ivfpq": {"large_nlist": 64, "factories": [
            "IVF{nlist},PQ8", "IVF{nlist},PQ32x4fs", "IVF{nlist},PQ16,Refine(SQ8)",
            "IVF{nlist},PQ32x4fs,RFlat", "screened"],
            "hnsw_quantizer_factory": "IVF{large_nlist}_HNSW32,PQ32x4fs",
            "rerank_factory": "IVF{nlist},PQ32x4fs", "rerank_k_factors": [1, 4],
            "ondisk_factory": "IVF{nlist},PQ8"},
        "04_build_hnsw": {"factories": ["HNSW16,Flat", "HNSW16,SQ8"], "m_values": [8],
                          "ef_construction_values": [16, 40], "ef_search": 32,
                          "time_sample_rows": 500},
        "05_build_ivfsq": {},
        "06_recall_vs_latency": {"repeats": 1, "single_queries": 10, "target_recall": 0.9,
                                 "sensitivity_factory": "IVF16,PQ8x4fs,Refine(SQ8)",
                                 "sensitivity_setting": {"nprobe": 4, "k_factor_rf": 8},
                                 "sensitivity_n": 3000, "sensitivity_d": 32,
                                 "slider_nprobe": 8, "slider_ef_search": 32},
        "07_beyond_one_machine": {"shards": 4, "workers": 2, "repeats": 1, "single_queries": 10},
    },
    "small": {  # the notebooks' own defaults: 20k x 1024
        "all": {},
        "01_data_generation": {"progress": False},
    },
    "1m": {
        # nprobe up to 1024: a finalist with nlist 16384 cleared 0.95 at 1M only at 1/16 of its
        # lists in the screening (at 256 its best was 0.943: benchmarks/results/1m)
        "all": {"nlist": 4096, "nprobe": 32, "max_nprobe": 1024},
        "01_data_generation": {"n": 1_000_000, "n_queries": 1000, "n_train": 0, "progress": False},
        # the same screening as full's, on its own rows: finalists judged at the
        # 10M target_n (a 10-minute budget at 10M kept none), then built here at 1M
        "02_memory_budget": {"check_factories": [], **screen_params(SCREEN_SEARCH, 1_000_000),
                             "screen_time_budget": "40min", "build_time_budget": FINALIST_BUILD_BUDGET},
        "03_build_ivfpq": {"hnsw_quantizer_factory": "", "rerank_k_factors": [1, 4, 16],
                           "cap_nprobe": 512,
                           # PQ64 alone is PQ64,Refine(SQ8) at k_factor_rf=1 (same codes, the
                           # same top k): built once, within the 20-minute target
                           "factories": ["IVF{nlist},PQ16", "IVF{nlist},PQ128x4fs",
                                         "IVF{nlist},PQ64,Refine(SQ8)", "screened", "IVF1024,PQ8"],
                           "ondisk_factory": "IVF1024,PQ8"},
        "04_build_hnsw": {"factories": ["HNSW32,SQ8"], "m_values": [32],
                          "ef_construction_values": [40]},
        "05_build_ivfsq": {"factories": ["IVF{nlist},SQ8", "IVF{nlist},SQ4"], "cap_nprobe": 512},
        "06_recall_vs_latency": {"k_factors": [1, 16, 64, 128]},
        # from an empty folder the finalists are unknown, so each counts at its 45-minute
        # budget (a 10M build) beside the screening's 40: 2.4 h estimated
        "time_budget": "3h",
        "skip": {"07_beyond_one_machine": "a second, sharded copy of IVF4096,SQ8 beside the one "
                                          "05 built adds disk and an hour of CPU on one machine "
                                          "without teaching more than the small presets do"},
    },
    "full": {  # the question this workbook answers: 10M x 1024 on 2 cores and 24 GiB
        # nprobe up to 2048: a finalist with nlist 16384 scans 1/16 of its lists at 0.95 (1M screening).
        # The indexes' folder holds at most 22 GiB (issue 41: the run fits in 45 GB beside the
        # 19.1 GiB base): two PQ256x4fs,Refine(SQ8) finalists at 10.8-10.9 GiB each fit together,
        # and their checkpoints take each other's place where both do not fit beside them
        "all": {"nlist": 4096, "nprobe": 32, "max_nprobe": 2048, "ram_budget": "20G",
                "disk_budget": "22G"},
        # the base stored as float16: half the disk of float32 (issue 41: the run must fit on
        # half a shared disk); ground truth and recall are computed on the stored values
        "01_data_generation": {"n": 10_000_000, "n_queries": 1000, "n_train": 0, "progress": False,
                               "storage_dtype": "float16"},
        # what to build is measured: the search's families on the first 1M rows, the two
        # fastest at recall@10 0.95 that fit the budgets go on to 10M
        "02_memory_budget": {"check_factories": [], **screen_params(SCREEN_SEARCH, 1_000_000),
                             "screen_time_budget": "40min", "build_time_budget": FINALIST_BUILD_BUDGET},
        "03_build_ivfpq": {"hnsw_quantizer_factory": "", "rerank_k_factors": [1, 4, 16],
                           "cap_nprobe": 256, "factories": ["screened"],
                           "rerank_factory": "screened", "ondisk_factory": "screened",
                           # an on-disk copy of a finalist's lists would add them to the disk
                           # again (issue 41): read and mapped loads are compared, the 1m run
                           # shows on-disk lists
                           "ondisk_lists": False},
        # HNSW32,SQ8 adds 2,750 vectors/s or fewer once past 1M rows here (1m run), so 10M
        # takes over an hour on top of the rest: planned here, measured apart (README)
        "04_build_hnsw": {"factories": ["HNSW32,Flat"], "plan_only": ["HNSW32,SQ8"],
                          "m_values": []},
        "05_build_ivfsq": {"factories": [], "cap_nprobe": 256, "ondisk_lists": False},
        # the refine depths and nprobe values the 10M sweep tries: a range, not an answer
        "06_recall_vs_latency": {"k_factors": [16, 32, 64, 128]},
        "skip": {"05_build_ivfsq": "IVF-SQ8 serves here as the finalists' refine stage; a standalone "
                                   "IVF4096,SQ8 needs its own 10M k-means and assignment (~12 min) "
                                   "and scans 1 KiB codes per vector",
                 "07_beyond_one_machine": "a second, sharded copy of an index beside the one 03 "
                                          "built adds disk and an hour of CPU on one machine "
                                          "without teaching more than the small presets do"},
        # from an empty folder: the dataset and ground truth, the screening's 40-minute budget,
        # two finalists at their 45-minute build budget: over the 60-minute target (README)
        "time_budget": "3h",
    },
}
