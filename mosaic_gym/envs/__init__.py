"""Gymnasium environments (the heavy module is imported on first use)."""
