"""Doors to dependencies' private internals, one module per dependency, each version-gated."""
