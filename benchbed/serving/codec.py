"""The JSON form of what runners take and return, so a runner's answers cross HTTP unchanged:
tensors and arrays become ``{"__tensor__": dtype, "shape": [...], "data": [...]}`` and come back
as tensors of that dtype; dicts, lists, strings and numbers pass as they are. Images and audio are
not serialised yet (the HTTP scenario serves text tasks)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["encode", "decode", "dumps", "loads", "CodecError"]


class CodecError(ValueError):
    """A value with no JSON form here, or a body that is not one (a malformed response)."""


def encode(value: Any) -> Any:
    """`value` as plain JSON types (tensors tagged)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    kind = type(value).__module__.split(".")[0]
    if kind == "torch":
        dtype = str(value.dtype).removeprefix("torch.")
        flat = value.detach().to("cpu").float().reshape(-1) if dtype in ("bfloat16", "float16") \
            else value.detach().to("cpu").reshape(-1)
        return {"__tensor__": dtype, "shape": list(value.shape), "data": flat.tolist()}
    if kind == "numpy":
        if value.shape == ():
            return value.item()
        return {"__tensor__": str(value.dtype), "shape": list(value.shape), "data": value.reshape(-1).tolist()}
    raise CodecError(f"cannot send a {type(value).__name__} over HTTP (text tasks only)")


def decode(value: Any) -> Any:
    """The values `encode` made, tensors back as torch tensors."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            import torch

            try:
                dtype = getattr(torch, value["__tensor__"])
                return torch.tensor(value["data"], dtype=dtype).reshape(value["shape"])
            except (AttributeError, TypeError, RuntimeError, ValueError) as exc:
                raise CodecError(f"malformed tensor in the response: {exc}") from None
        return {k: decode(v) for k, v in value.items()}
    return value


def dumps(value: Any) -> bytes:
    return json.dumps(encode(value), separators=(",", ":")).encode()


def loads(body: bytes) -> Any:
    try:
        return decode(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CodecError(f"malformed response (not JSON: {exc}; body {body[:80]!r})") from None
