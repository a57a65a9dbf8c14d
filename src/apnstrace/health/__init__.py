"""Where traffic stopped and how long each step took: block reasons, the blocked table, timing."""
from .blocked_table import blocked_table
from .reasons import REASONS, block_reasons, reads_capture_end
from .timing import courier_table, flow_timing, timing_table

__all__ = ["REASONS", "block_reasons", "blocked_table", "reads_capture_end", "courier_table", "flow_timing",
           "timing_table"]
