"""Models of known size for tests that count bytes, parameters and optimizer state."""

from __future__ import annotations

import types

import torch


class KnownLinear(torch.nn.Module):
    """A model of known parameter count (width² + width) with the (input_ids, attention_mask,
    labels) -> .loss interface of the training tasks."""

    def __init__(self, width):
        super().__init__()
        self.proj = torch.nn.Linear(width, width)
        self.width = width

    def forward(self, input_ids, attention_mask, labels):
        x = torch.nn.functional.one_hot(input_ids % self.width, self.width).float()
        return types.SimpleNamespace(loss=torch.nn.functional.cross_entropy(self.proj(x).flatten(0, 1),
                                                                            labels.flatten() % self.width))
