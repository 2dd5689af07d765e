"""search: notebook 06's wing. Recall with its interval, QPS and latency, and
ParameterSpace sweeps (`evaluate`), choosing among sweep rows (`choose`), exact
re-ranking from disk (`exact`), the recall@10 >= 0.99 stage (`final_stage`) and the
screening that picks the finalists on the first rows (`screen`).

May import: core, data, index."""
