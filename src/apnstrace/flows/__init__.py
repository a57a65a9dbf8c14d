"""Packet columns -> bidirectional flows (flow table, conn_state, output frame)."""
from .finalize import assemble, flows_piece, to_flows_frame
from .table import FlowTable

__all__ = ["FlowTable", "assemble", "flows_piece", "to_flows_frame"]
