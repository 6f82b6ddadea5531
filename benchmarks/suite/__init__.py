"""The benchmark suite behind ``python -m benchmarks``: one module per workload, and the
peer-side scripts (``peer_<name>.py``) that run inside each peer's own venv."""
