"""The TokenLedger benchmark harness: `python -m bench --help`, docs/benchmarks.md."""
