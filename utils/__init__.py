"""Shared utilities of the iSeg toolkit: mesh I/O, cameras, rasterization, rendering, errors."""
