"""Test-suite set-up: one torch thread per pytest worker (CI has 2 cores, xdist 2 workers)."""

import torch

torch.set_num_threads(1)
