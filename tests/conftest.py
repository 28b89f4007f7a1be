"""Shared fixtures (helpers without fixtures live in helpers.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import TINY_RECIPE, browser, make_sample_split

__all__ = ["browser"]  # the fixture lives in helpers.py (a subprocess test imports it there)


def _tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``path`` (root only: the tests run as root in CI), unmounted after."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nothing can be written in: a read-only file system (as root, whom permissions
    do not stop), or a folder without write permission."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    yield from _tmpfs(tmp_path / "read-only", "ro,size=1m")


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on a full disk: a small tmpfs, filled up."""
    for folder in _tmpfs(tmp_path / "full", "size=256k"):
        try:
            with open(folder / "filler", "wb") as stream:
                while True:
                    stream.write(b"\0" * 4096)
                    stream.flush()
        except OSError:
            pass
        yield folder


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
