"""Weft's background engine: runs the models and streams every partial result to its clients."""
