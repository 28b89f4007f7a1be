"""Every locked distribution, downloaded hash-checked, for an air-gapped install (wheelhouse.sh).

Wheels are fetched for the lock's platform (Linux x86_64, CPython 3.11), whatever machine this
runs on. A locked package published only as a source distribution (spy-der, a C++ extension) is
fetched as its hash-checked sdist, with the wheels of its build requirements, so that
``setup.sh --offline`` builds it with ``--no-index`` (a C++ compiler is then needed there).
Standard library only: it runs before any environment exists.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ("requirements.lock", "requirements-assets.lock")
PLATFORM = [
    "--implementation", "cp", "--python-version", "3.11",
    "--abi", "cp311", "--abi", "abi3", "--abi", "none",
    "--platform", "manylinux2014_x86_64", "--platform", "manylinux2010_x86_64",
    "--platform", "manylinux1_x86_64", "--platform", "linux_x86_64", "--platform", "any",
    # pip does not widen an explicit platform: every glibc tag up to the lock's 2.28
    *(arg for glibc in range(5, 29) for arg in ("--platform", f"manylinux_2_{glibc}_x86_64")),
]  # fmt: skip
MISSING = re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)==")


def blocks(text: str) -> dict[str, str]:
    """``{canonical name: its lines}`` of a hashed requirements file (comments dropped)."""
    found: dict[str, list[str]] = {}
    name = None
    for line in text.splitlines():
        if re.match(r"^[A-Za-z0-9]", line):
            name = re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
            found[name] = [line]
        elif name and line.strip().startswith("--hash"):
            found[name].append(line)
    return {k: "\n".join(v).rstrip(" \\") + "\n" for k, v in found.items()}


def pip(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(command, capture_output=True, text=True)


def download(requirements: dict[str, str], out: Path, work: Path, binary: bool) -> str | None:
    """Download ``requirements`` (hash-checked); the name of one without a wheel, if any."""
    listing = work / ("binary.txt" if binary else "source.txt")
    listing.write_text("".join(requirements.values()))
    kind = [*PLATFORM, "--only-binary=:all:"] if binary else ["--no-binary=:all:"]
    done = pip("download", "--quiet", "--no-deps", "--require-hashes", *kind,
               "-r", str(listing), "-d", str(out))  # fmt: skip
    if done.returncode == 0:
        return None
    missing = MISSING.search(done.stderr)
    if binary and missing:
        return re.sub(r"[-_.]+", "-", missing.group(1)).lower()
    raise SystemExit(f"wheelhouse: pip download failed:\n{done.stderr.strip()[-2000:]}")


def build_requirements(sdist: Path) -> list[str]:
    """The ``[build-system] requires`` of a source distribution (setuptools when it has none)."""
    with tarfile.open(sdist) as archive:
        member = next((m for m in archive.getmembers() if m.name.count("/") == 1
                       and m.name.endswith("/pyproject.toml")), None)  # fmt: skip
        if member is None:
            return ["setuptools", "wheel"]
        data = tomllib.loads(archive.extractfile(member).read().decode())
    return data.get("build-system", {}).get("requires", ["setuptools", "wheel"])


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".wheelhouse"
    work.mkdir(exist_ok=True)
    wanted: dict[str, str] = {}
    for lock in LOCKS:
        wanted.update(blocks((ROOT / lock).read_text()))
    source: dict[str, str] = {}
    while (name := download(wanted, out, work, binary=True)) is not None:
        source[name] = wanted.pop(name)  # no wheel for the platform: take the sdist
    if source:
        download(source, out, work, binary=False)
        builds = set()
        for sdist in out.glob("*.tar.gz"):
            builds.update(build_requirements(sdist))
        listing = work / "build.txt"
        listing.write_text("\n".join(sorted(builds)) + "\n")
        done = pip("download", "--quiet", *PLATFORM, "--only-binary=:all:", "-r", str(listing),
                   "-d", str(out))  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"wheelhouse: build requirements: {done.stderr.strip()[-2000:]}")
    for path in [*(work.iterdir()), work]:
        path.unlink() if path.is_file() else path.rmdir()
    sys.path.insert(0, str(ROOT))
    from bench.environment import lock_sha256  # stdlib only

    for lock in LOCKS:
        (out / lock).write_text((ROOT / lock).read_text())
    # setup.sh --offline checks that the wheelhouse was made from its checkout's lock
    (out / "bench-lock.sha256").write_text(lock_sha256(ROOT) + "\n")
    files = sorted(p for p in out.iterdir() if p.suffix in (".whl", ".gz"))
    size = sum(p.stat().st_size for p in files) / 2**30
    sdists = f" ({', '.join(sorted(source))} from source)" if source else ""
    print(f"wheelhouse: {len(files)} files, {size:.1f} GiB, in {out}{sdists}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: scripts/wheelhouse.sh DIR")
    main(Path(sys.argv[1]).resolve())
