"""Files and folders written so that a reader never sees half of one, content hashes, and bench's
cache folder (torch-free; the one place each of these rules lives).

- :func:`atomic_file` / :func:`atomic_write_text` / :func:`write_json`: a temporary file in the
  target's folder, fsynced, then renamed over the target; the file gets the permissions the umask
  gives a new file (``mkstemp`` alone would leave ``0600``, unreadable to a team's other users).
- :func:`staging_dir` / :func:`swap_dir`: a folder built beside its target and swapped in whole;
  the old one is moved aside first and deleted only once the new one is in place. What a killed
  writer left beside the target is cleared by the next one (a target it had moved aside is put
  back first).
- :func:`finite_json`: strict JSON (NaN/inf become null, and where it happened is returned).
- :func:`is_number`: a finite real number, not a bool (what may be ranked or compared).
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def cache_root(explicit: str | Path | None = None) -> Path:
    """``explicit``, else ``$BENCH_CACHE`` (when set and not empty), else ``~/.cache/bench``."""
    if explicit is not None and str(explicit):
        return Path(explicit).expanduser()
    return Path(os.environ.get("BENCH_CACHE") or Path.home() / ".cache" / "bench").expanduser()


def file_name(text: object) -> str:
    """``text`` as a safe file name: every character outside ``A-Za-z0-9_.+-`` replaced by
    ``_``, no leading dot (a URI, a fingerprint or a recipe file's stem)."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", str(text)).lstrip(".") or "_"


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, streamed (large audio never sits in memory twice)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """OS errors raised in the block name ``path`` when they name no file themselves (a write
    that meets a full disk says only ``No space left on device``)."""
    try:
        yield
    except OSError as error:
        if error.filename is not None or error.errno is None:
            raise
        raise OSError(error.errno, error.strerror, str(path)) from error


@contextmanager
def atomic_file(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed over ``path`` when the block succeeds,
    removed when it fails. ``suffix`` keeps writers that add one (``np.save``) on that name."""
    with naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically: temp file, fsync, rename."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    return path


def is_number(value: Any) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def finite_json(data: Any, path: str = "") -> tuple[Any, list[str]]:
    """``data`` with every NaN/inf replaced by None, and the JSON paths where that happened."""
    if isinstance(data, float) and not math.isfinite(data):
        return None, [path or "."]
    if isinstance(data, dict):
        out, where = {}, []
        for key, value in data.items():
            out[key], found = finite_json(value, f"{path}.{key}" if path else str(key))
            where += found
        return out, where
    if isinstance(data, list | tuple):
        items = [finite_json(v, f"{path}[{i}]") for i, v in enumerate(data)]
        return [v for v, _ in items], [w for _, found in items for w in found]
    return data, []


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as strict JSON to ``path`` atomically (NaN/inf become null)."""
    clean, _ = finite_json(data)
    return atomic_write_text(path, json.dumps(clean, indent=2, allow_nan=False) + "\n")


def _writer_tag() -> str:
    """``HOST-PID``: which process wrote a staging or set-aside folder (see :func:`_abandoned`)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def swap_dir(new: Path, target: Path) -> None:
    """Put folder ``new`` at ``target``. An existing ``target`` is moved aside first
    (``.NAME.old-HOST-PID-*``) and deleted only once ``new`` is in place; if that rename fails
    the old folder is put back."""
    if not target.exists():
        os.replace(new, target)
        return
    old = target.parent / f".{target.name}.old-{_writer_tag()}-{secrets.token_hex(4)}"
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _abandoned(target: Path, kind: str) -> list[Path]:
    """``.NAME.{kind}-HOST-PID-*`` folders beside ``target`` whose writer was a process of this
    host that no longer runs (a live writer's, another host's, or an unknown name are kept)."""
    found = []
    prefix = f".{target.name}.{kind}-"
    for path in sorted(target.parent.glob(f"{glob.escape(prefix)}*")):
        host, _, rest = path.name[len(prefix) :].rpartition("-")
        host, _, pid = host.rpartition("-")
        if host != socket.gethostname() or not pid.isdigit() or not rest:
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            found.append(path)
        except PermissionError:  # another user's live process
            continue
    return found


def clear_leftovers(target: Path) -> list[Path]:
    """Remove what killed writers of ``target`` left beside it: staging folders, and folders
    moved aside (one is moved back first when ``target`` itself is missing: a writer was killed
    between the two renames of :func:`swap_dir`). Returns what was removed."""
    old = _abandoned(target, "old")
    if old and not target.exists():
        os.replace(old.pop(), target)
    removed = _abandoned(target, "new") + old
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


@contextmanager
def staging_dir(target: Path, mode: int | None = None) -> Iterator[Path]:
    """A fresh folder beside ``target`` (``.NAME.new-HOST-PID-*``) that replaces ``target`` when
    the block succeeds and is removed when it fails. The folder gets the umask's permissions
    (``mode`` overrides them). What an earlier writer that was killed left is cleared first
    (:func:`clear_leftovers`)."""
    with naming(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        clear_leftovers(target)
        prefix = f".{target.name}.new-{_writer_tag()}-"
        stage = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        with naming(target):
            yield stage
            os.chmod(stage, mode if mode is not None else 0o777 & ~_umask())
            swap_dir(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
