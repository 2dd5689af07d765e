"""index: notebooks 02-05's wing. What a factory string builds (`factory_tree`), the
memory model (`memory`) and the plan for a budget (`planner`), coarse spaces shared by
IVF builds (`coarse`), faiss index objects (`indexes`), builds from disk in phases
(`build`), memory measured in a fresh process (`measure`) and the recommended index's
full-scale build (`export`).

May import: core, data."""
