"""Benchmarks: measured side by side with a peer in one run, printed as ratios. Not tests."""
