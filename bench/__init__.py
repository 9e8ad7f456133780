"""Benchmarks for issue 8 (`make bench`): ratios of things measured side by side in one run,
with medians of repeated runs, because the machines are shared and absolute times drift."""
