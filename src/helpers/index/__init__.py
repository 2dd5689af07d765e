"""index: notebooks 02-05's wing. What a factory string builds (`factory_tree`: the
one place for its facts, its coarse space and fast-scan twin), the memory model
(`memory`) and the plan for a budget (`planner`), coarse spaces shared by IVF builds
(`coarse`), faiss index objects made from a parsed factory (`indexes`), builds from
disk in phases (`build`: plan, train, add, commit, each phase going down to the
modules it uses, never back up), memory measured in a fresh process (`measure`) and
the recommended index's full-scale build (`export`).

May import: core, data."""
