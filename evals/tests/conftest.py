"""Test set-up for this member: the XLA CPU hang guard (`train.xla_env`), before any test imports JAX."""

from train.xla_env import avoid_cpu_eigen_pool_hang

avoid_cpu_eigen_pool_hang()  # before any test module imports JAX
