"""``python -m benchmarks [--quick] [--only NAME ...] [--repeats R] [--out DIR]``.

Times rnngraph and its peers on the same workloads in one run, on one thread, and writes
``benchmarks/results/bench.md`` and ``bench.json``. See ``benchmarks/suite/README.md``.
"""

import os
import sys


def _main() -> int:
    # one thread for every BLAS / OpenMP pool, set before numpy, scipy or torch load
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    from benchmarks.suite.runner import main

    return main()


if __name__ == "__main__":
    sys.exit(_main())
