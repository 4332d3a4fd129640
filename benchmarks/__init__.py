"""Benchmark harness: sync, re-sync, scale and selection of core-model-registry against floors measured in
the same run. Run it with `python -m benchmarks` from the project root (see benchmarks/README.md)."""
