"""One compute thread per request: cap BLAS / OpenMP / torch thread pools in a server process.

Why: a server answers many small requests at once, and each needs little more than a
``(1 × d) · (d × n_items)`` product — about 0.05 ms on one core for a 4k-item catalog. A
multi-threaded BLAS wakes its whole pool for every such call; with 32 requests in flight on 2
cores the pools' threads spin and wait on each other, and we measured the same product at 7–30 ms
on a busy 2-core machine (``bench/serve_load.py``). Concurrency should come from requests, so the
``serve`` command runs each request's maths on one thread.
"""

from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger(__name__)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads(n: int = 1) -> None:
    """Cap every compute thread pool of this process at ``n`` threads.

    Sets the environment variables (for libraries not loaded yet), then resizes the pools that
    are already loaded: BLAS / OpenMP via ``threadpoolctl`` when installed, and torch's. Call it
    before loading models and again after.
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        logger.info("threadpoolctl not installed; thread caps rely on environment variables")
    else:
        threadpool_limits(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
