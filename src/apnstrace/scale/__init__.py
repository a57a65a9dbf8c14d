"""Many captures: per-file work in parallel (processes or Dask), an exact merge, Parquet datasets."""
from .dataset import read_flows, write_flows

__all__ = ["read_flows", "write_flows"]
