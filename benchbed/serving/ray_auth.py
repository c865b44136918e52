"""Starting or joining Ray without leaving anything in the home folder, and one line when Ray
refuses: shared by the Ray launcher (`execute.launchers.ray_cluster`) and Ray Serve
(`serving.ray_serve`), below both."""

from __future__ import annotations

import os

__all__ = ["token_in_memory", "init_failure"]


def token_in_memory() -> None:
    """A local Ray of Ray's recent releases turns token authentication on and, with no token
    anywhere, writes one to ``~/.ray/auth_token``; every later plain ``ray start --head`` of the user
    then demands it. Where the user has chosen nothing (no ``RAY_AUTH_MODE``, no token in the
    environment or the home), benchbed's throwaway cluster gets a token in this process's
    environment only, so nothing is written to the home."""
    import secrets

    if any(os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
        return
    if os.path.exists(os.path.join(os.path.expanduser("~"), ".ray", "auth_token")):
        return
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


def init_failure(address: str | None, exc: BaseException) -> str:
    """One line for a failed ``ray.init``, naming Ray's authentication when that is the cause."""
    text = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
    where = address or "a new local instance"
    if exc.__class__.__name__ == "AuthenticationError" or "authenticat" in text.lower() or "token" in text.lower():
        return (f"the Ray cluster at {where} refused benchbed: it uses token authentication. Set RAY_AUTH_MODE=token "
                f"and give its token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token); or start the "
                f"cluster with RAY_AUTH_MODE=disabled")
    token = os.path.exists(os.path.join(os.path.expanduser("~"), ".ray", "auth_token"))
    if address is not None and token and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return (f"cannot reach the Ray cluster at {where}: {text}. A token exists in ~/.ray/auth_token, so a "
                f"cluster started here with `ray start` uses token authentication: set RAY_AUTH_MODE=token")
    return f"cannot reach the Ray cluster at {where}: {text}"
