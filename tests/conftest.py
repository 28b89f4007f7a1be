"""Shared fixtures (helpers without fixtures live in helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import TINY_RECIPE, browser, make_sample_split

__all__ = ["browser"]  # the fixture lives in helpers.py (a subprocess test imports it there)


@pytest.fixture
def sample_split(tmp_path: Path) -> Path:
    return make_sample_split(tmp_path / "sample_split")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One bench cache (demo data, decoded audio) for the whole test session."""
    return Path(os.environ.get("BENCH_TEST_CACHE") or tmp_path_factory.mktemp("bench-cache"))


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.py"
    path.write_text(TINY_RECIPE)
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small convolutions gain little from a second thread, and two OpenMP threads on a busy
    2-core machine are many times slower than one; restored afterwards."""
    from bench.evaluation.pipeline import torch_threads

    with torch_threads(1):
        yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use the ``browser`` fixture carry the ``browser`` marker (``-m browser``);
    ``gpu`` tests skip on a machine without CUDA."""
    cuda = None
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
        if item.get_closest_marker("gpu") is not None:
            if cuda is None:
                import torch

                cuda = torch.cuda.is_available()
            if not cuda:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))
