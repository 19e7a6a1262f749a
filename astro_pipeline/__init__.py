"""astro_pipeline: the ASTRO method (arXiv 2507.00417) as a Dagster-orchestrated pipeline.

Domain packages (data, verify, llm, search, cloning, train, evaluate, warehouse) are plain Python;
only ``astro_pipeline.defs`` and the CLI import dagster.
"""

__version__ = "0.1.0"
