"""A/A check of the training comparison: the raw loop against a second copy of itself (and against
the Trainer) in one interleaved cell. The copy's ratio to the reference is the harness's own floor:
a Trainer ÷ torch ratio inside it is no difference at all.

    python scripts/training_aa.py minilm 8 128            # MiniLM sequence classification, b8 s128
    python scripts/training_aa.py synthetic:llama-tiny 4 32
"""

from __future__ import annotations

import argparse
import tempfile

import pandas as pd

from benchbed import Matrix
from benchbed.engine import EngineConfig, Session
from benchbed.measure import StopRule
from benchbed.runners import register_runner
from benchbed.runners.training import TrainLoopRunner


@register_runner
class TorchAgain(TrainLoopRunner):
    """The hand-written loop once more, under another name."""

    NAME = "torch-again"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("batch_size", type=int)
    p.add_argument("seq_len", type=int)
    p.add_argument("--task", default=None, help="default: train-causal-lm for GPT-2/Llama, else train-text-classification")
    p.add_argument("--min-samples", type=int, default=20)
    p.add_argument("--max-time", type=float, default=30.0)
    args = p.parse_args()
    task = args.task or ("train-causal-lm" if any(k in args.model for k in ("gpt2", "llama"))
                         else "train-text-classification")
    m = Matrix(task=(task,), model=(args.model,), batch_size=(args.batch_size,), seq_len=(args.seq_len,),
               runner=("torch", "torch-again", "trainer"))
    with tempfile.TemporaryDirectory() as results:
        session = Session(results, EngineConfig(rule=StopRule(min_samples=args.min_samples, max_time_s=args.max_time)))
        session.run(m.cases())
        session.close()
        df = pd.read_parquet(results)
    cols = ["runner", "lat_median_s", "ref_ratio", "ref_ratio_low", "ref_ratio_high", "parity_ok", "n_samples"]
    print(df[cols].to_string(index=False))


if __name__ == "__main__":
    main()
