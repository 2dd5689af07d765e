"""data: notebook 01's wing. Vector files read in blocks (`vectors`, `sources`), the
synthetic distribution (`synthetic`), dataset folders and their manifest (`dataset`,
`dataset_files`), users' vectors imported (`ingest`) and exact ground truth
(`groundtruth`).

May import: core."""
