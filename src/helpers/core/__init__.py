"""core: what every wing stands on. Atomic writes, locks and checksums (`files`), the
keyed-file layer that reuses a result only while its inputs are equal (`keyed_files`),
index files written and mapped (`index_files`), every rule of thumb (`heuristics`),
every notebook parameter and preset (`config`), every result key (`keys`), progress
bars (`progress`), memory measurement (`rss`), the disk a run's folders use (`disk`)
and faiss's C++ messages (`quiet`).

May import: nothing else in helpers."""
