"""Workloads beyond one synthetic call: real inputs (`sources`, `sampler`) and the serving loop of
the server scenario (`server`). The engine drives runners through them in `execute.drivers`."""
