"""The pipeline's library, one subpackage per part — geometry/, encoder/, decoder/, pipeline/ (the stage runner and
budgets), evaluation/, app/ — on a small base: errors, io, paths, runtime, cli, plots."""

import os as _os

# Same seed, same bits on a busy machine: the math libraries must not pick their thread counts by the moment's load
# (MKL's and OpenMP's dynamic adjustment). Set before torch loads them — every script imports utils first. The
# thread count itself still changes the last bits (it sets the order of additions): torch uses one thread per core
# unless OMP_NUM_THREADS or torch.set_num_threads says otherwise.
_os.environ.setdefault("MKL_DYNAMIC", "FALSE")
_os.environ.setdefault("OMP_DYNAMIC", "FALSE")
