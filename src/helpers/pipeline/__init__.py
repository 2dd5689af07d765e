"""pipeline: the workbook run as a batch job. The papermill runner (`run`) and the
kernels it watches (`kernels`), what a run will build and whether it fits, checked
before anything is written (`run_checks`; its disk, part by part: `disk_plan`), the
command line (`cli`), the run summary (`summary`) and parameters that follow a user's
data (`profile`).

May import: core, data, index, search, scale, notebook."""
