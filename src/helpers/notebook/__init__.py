"""notebook: what the notebooks show. Figures (`plots`), tables (`tables`), widgets
(`widgets`), self-contained HTML exports (`notebook_html`), the one-call set-up of
notebooks 03-06 (`setup`), the committed 10M evidence (`evidence`) and small-sample
structure measures (`explore`).

May import: core, data, index, search, scale."""
