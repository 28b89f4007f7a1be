"""The ``bench`` command line (``bench.cli:app``)."""

from bench.cli.main import app

__all__ = ["app"]
