"""scale: notebook 07's wing. Sharded builds and search on Dask (`distributed`).

May import: core, data, index, search."""
