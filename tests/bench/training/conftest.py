"""The corpus tests' mirrors: real git repositories made in a temporary directory."""

from tests.bench.training.test_build import mirrors

__all__ = ["mirrors"]
