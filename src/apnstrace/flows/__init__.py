"""Packet columns -> bidirectional flows (flow table, conn_state, output frame)."""
from .finalize import to_flows_frame
from .table import FlowTable

__all__ = ["FlowTable", "to_flows_frame"]
