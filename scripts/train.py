#!/usr/bin/env python
"""`conflict-ie train` as a script, so that launchers can start it on several processes unchanged:

    python scripts/train.py --config configs/train/conflict-minilm.yaml
    torchrun --nproc_per_node 2 scripts/train.py --config ...        # CPU (gloo) or GPUs (nccl)
    accelerate launch scripts/train.py --config ...

The Trainer sets up the process group from the launcher's environment; only rank 0 writes the run folder.
"""

import sys

from conflict_ie.cli import main

if __name__ == "__main__":
    code = main(["train", *sys.argv[1:]])
    import torch.distributed as dist

    # Without this a rank aborts at exit under torchrun (exit -6) and the launcher reports failure.
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    sys.exit(code)
