"""Speed and memory benchmarks (print markdown tables); research experiments live in ``research/``.

Run from the repository root as modules, e.g. ``python -m benchmarks.bench_quantize --help``
(see ``benchmarks/README.md``).
"""
