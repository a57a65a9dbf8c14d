"""Frames -> files and terminal tables."""
