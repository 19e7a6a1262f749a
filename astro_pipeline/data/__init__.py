"""Problem data: where datasets come from and how rows become the ``problems`` table.

Modules (plain Python, no dagster):

* ``settings``: recipe sections ``datasets`` (DatasetSettings) and ``problems`` (ProblemSettings).
* ``sources``: ``DatasetSource`` and the built-in datasets (local files or Hugging Face ids).
* ``registry``: ``DatasetRegistry``, user datasets persisted in the artifact store.
* ``readers``: raw rows from files (jsonl/json/parquet/csv, local or s3://), the hub, the generator.
* ``normalize``: one row -> a normalized problem or a quarantine reason.
* ``schema``: column schemas of ``problems`` / ``quarantine`` and the quarantine reasons.
* ``load``: ``load_problems(source, settings) -> LoadedProblems``.
* ``synthetic``: generated demo problems (its own module and settings).
"""
