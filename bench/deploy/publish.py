"""``bench export --push-to-hub REPO_ID``: an exported folder uploaded to the Hugging Face hub
through ``huggingface_hub`` (``create_repo``, then ``upload_folder``), with the token from
``$HF_TOKEN``; ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` behave as for every hub call. Nothing local
is changed: the folder is written before and read, never modified, by the push."""

from __future__ import annotations

import os
from pathlib import Path

from bench.deploy.export import DeployError
from bench.models.hub import first_line, token_from


def require_token(repo_id: str, token_env: str = "HF_TOKEN") -> str:
    """The token a push needs (checked before anything is exported)."""
    token = token_from(token_env)
    if token is None:
        raise DeployError(
            f"--push-to-hub {repo_id}: no token in ${token_env} (a write token: "
            f"{_endpoint()}/settings/tokens)"
        )
    return token


def _endpoint() -> str:
    """The hub's address: ``$HF_ENDPOINT`` as it is now, else huggingface_hub's."""
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT") or constants.ENDPOINT


def push(folder: Path, repo_id: str, private: bool = False, token_env: str = "HF_TOKEN") -> str:
    """Upload ``folder`` to the model repository ``repo_id`` (created when missing); return the
    URL of the commit. Every failure is one :class:`DeployError` line."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    token = require_token(repo_id, token_env)
    endpoint = _endpoint()
    api = HfApi(endpoint=endpoint, token=token, library_name="bench")
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="model",
            commit_message=f"bench export of {folder.name}",
        )
    except OfflineModeIsEnabled:
        raise DeployError(f"--push-to-hub {repo_id}: HF_HUB_OFFLINE is set") from None
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        raise DeployError(
            f"--push-to-hub {repo_id}: the hub at {endpoint} answered {status}: {first_line(error)}"
        ) from None
    except Exception as error:  # connection refused, DNS, TLS: huggingface_hub's HTTP client
        # (httpx, or its fork httpx2 in huggingface_hub 2.x) has exceptions of its own
        raise DeployError(
            f"--push-to-hub {repo_id}: cannot reach the hub at {endpoint}: "
            f"{type(error).__name__}: {first_line(error)}"
        ) from None
    return str(commit.commit_url)
