"""Test-session set-up shared by every member's tests (runs before any test module imports JAX).

pytest's importlib mode names a test module after its folders, so `evals/tests/test_x.py` would make
`evals` (the member folder) a namespace package and shadow the installed `evals`; the same holds
for `train` and `pallas_kernels`. Importing the installed packages here, first, keeps them in place.
"""

import evals  # noqa: F401
import pallas_kernels  # noqa: F401
from train.xla_env import avoid_cpu_eigen_pool_hang

avoid_cpu_eigen_pool_hang()
