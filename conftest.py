"""Test-session set-up shared by every member's tests (runs before any test module imports JAX)."""

from train.xla_env import avoid_cpu_eigen_pool_hang

avoid_cpu_eigen_pool_hang()
