"""The DuckDB warehouse over the artifact store's Parquet tables."""

from astro_pipeline.warehouse.duck import Warehouse, publish
from astro_pipeline.warehouse.tables import TABLE_GLOBS, table_file

__all__ = ["TABLE_GLOBS", "Warehouse", "publish", "table_file"]
