"""image-classification on ViT shapes: seeded synthetic images, the model's image processor,
softmax and the top 5 labels, as the pipeline returns them.

For image tasks the ``seq_len`` axis is the side of the input images in pixels (before the
processor resizes them), because that is what changes the preprocessing cost. Which preprocessing
backend ran (PIL/numpy or torchvision) is recorded, since it changes that cost too.
"""

from __future__ import annotations

from typing import Any

from .base import Parity, Task, compare_items

__all__ = ["ImageClassification", "make_images", "preprocessor_backend"]

TOP_K = 5


def make_images(count: int, side: int, seed: int = 0) -> list[Any]:
    """`count` seeded RGB images, side × side: smooth colour gradients plus noise, so that resizing
    and normalising do the work they do on photographs (not on a constant image)."""
    import numpy as np
    from PIL import Image

    out = []
    for i in range(count):
        rng = np.random.default_rng([seed, i, side])
        y, x = np.mgrid[0:side, 0:side] / max(1, side - 1)
        base = np.stack([np.sin(3 * x + rng.uniform(0, 6)), np.cos(2 * y + rng.uniform(0, 6)),
                         np.sin(4 * (x + y) + rng.uniform(0, 6))], axis=-1)
        pixels = (127.5 * (base + 1) + rng.normal(0, 12, (side, side, 3))).clip(0, 255).astype("uint8")
        out.append(Image.fromarray(pixels, "RGB"))
    return out


def preprocessor_backend(processor: Any) -> str:
    name = type(processor).__name__
    torchvision = name.endswith("Fast") or "Torchvision" in name
    return f"{name} ({'torchvision' if torchvision else 'PIL/numpy'})"


class ImageClassification(Task):
    name = "image-classification"
    pipeline_task = "image-classification"
    head = "image-classification"
    modality = "image"
    description = "ViT-style classification of seeded synthetic images (seq_len = image side in px); top-5"

    def recorded_options(self, bundle: Any) -> dict[str, Any]:
        return {"preprocessor": preprocessor_backend(bundle.tokenizer)}

    @property
    def labels(self) -> tuple[str, ...]:  # type: ignore[override]
        from ..models.synthetic import IMAGENET_LABELS

        return IMAGENET_LABELS

    def make_inputs(self, tokenizer: Any, batch_size: int, seq_len: int, seed: int) -> list[Any]:
        return make_images(batch_size, seq_len, seed)

    def preprocess(self, bundle: Any, inputs: list[Any], device: Any) -> Any:
        return bundle.tokenizer(images=inputs, return_tensors="pt").to(device)

    def module_inputs(self, bundle: Any, encoded: Any) -> dict[str, Any]:
        return {"pixel_values": encoded["pixel_values"].to(bundle.module.dtype)}

    def postprocess(self, bundle: Any, encoded: Any, outputs: Any) -> list[Any]:
        import torch

        probs = torch.softmax(outputs.logits.float(), dim=-1)
        values, idx = probs.topk(min(TOP_K, probs.shape[-1]), dim=-1)
        id2label = bundle.module.config.id2label
        return [[{"label": id2label[i], "score": v} for v, i in zip(vs, ids)]
                for vs, ids in zip(values.tolist(), idx.tolist())]

    def normalize_pipeline(self, outputs: Any, n: int) -> list[Any]:
        return [outputs] if outputs and isinstance(outputs[0], dict) else list(outputs)

    def compare(self, raw: list[Any], piped: list[Any], dtype: str) -> Parity:
        return compare_items(raw, piped, dtype, _same_top_labels,
                             lambda worst: f"{len(raw)} top labels equal; max score diff {worst:.2g}")


def _same_top_labels(i: int, a: Any, b: Any, tol: Any) -> tuple[str | None, float]:
    if a[0]["label"] != b[0]["label"]:
        return f"item {i}: top label {a[0]['label']!r} (torch) vs {b[0]['label']!r} (pipeline)", 0.0
    sb = {x["label"]: x["score"] for x in b}
    worst = 0.0
    for x in a:
        if x["label"] in sb:
            worst = max(worst, abs(x["score"] - sb[x["label"]]))
            if not tol.close(x["score"], sb[x["label"]]):
                return (f"item {i}: score of {x['label']!r} {x['score']:.6g} (torch) vs {sb[x['label']]:.6g} "
                        f"(pipeline)"), worst
    return None, worst
