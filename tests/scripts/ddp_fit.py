"""One rank of a data-parallel fit (tests/test_ddp.py starts two, as torchrun would).

Reads RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT from the environment, joins a gloo
process group, fits the detector the test names and saves the final weights, the loss
curve and the training scores to ``<out>/rank<RANK>.npz``.
"""

import os
import pickle
import sys

import numpy as np
import torch
import torch.distributed as dist


def main(kind, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    detector, X = CASES[kind]()
    detector.fit(X)
    if dist.get_rank() == 0:
        with open(os.path.join(out, "detector.pkl"), "wb") as handle:
            pickle.dump(detector, handle)
    weights = {f"w{i}": p.detach().cpu().numpy()
               for i, p in enumerate(detector.model_.networks_["denoiser"].parameters())}
    np.savez(os.path.join(out, f"rank{dist.get_rank()}.npz"),
             loss=np.asarray(detector.loss_curve_), scores=detector.decision_scores_,
             world=detector.history_.get("world_size", 1), **weights)
    dist.destroy_process_group()


def table_case():
    from skdiffad import TabDiffusionDetector

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5)) @ rng.normal(size=(5, 5))
    return TabDiffusionDetector(denoiser="mlp", scoring="reconstruction", widths=(32, 32), batch_size=64,
                                max_steps=120, n_timesteps=100, ema_decay=0.9, device="cpu",
                                random_state=0), X


CASES = {"table": table_case}

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
