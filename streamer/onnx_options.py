"""The onnxruntime session settings every model of the streamer runs with (faces and voices)."""

from __future__ import annotations

import onnxruntime as ort


def session_options(*, threads: int | None = None, spin_wait: bool = False) -> ort.SessionOptions:
    """`threads`: intra-op threads (None: onnxruntime's default). `spin_wait=True` keeps onnxruntime's
    default busy-waiting threads (what a plain insightface user, e.g. M3-Agent, runs with)."""
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    # ArcFace graphs declare batch 1 yet run any batch; the shape warnings that follow are noise.
    opts.log_severity_level = 3
    if not spin_wait:
        # onnxruntime's threads busy-wait between operators by default, taking the core that the
        # decoder thread needs: without it the streamer runs 20-30% faster on 2 cores (tools/bench.py).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Inputs vary run to run (1 to 36 faces, speech turns of 0.5 to 30 s): an arena sized by the
    # largest (~150 MB for 32 faces) and a memory plan cached per shape would be kept for good;
    # plain allocations are given back after each run.
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False
    return opts
