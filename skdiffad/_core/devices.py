"""Where models run: resolving ``device=`` and finding a home for an unpickled model."""

from __future__ import annotations

import os
import warnings

import torch

__all__ = ["data_parallel_world", "loadable_device", "resolve_device"]


def resolve_device(device) -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a ``torch.device``.

    ``"auto"`` picks CUDA when a GPU is visible; asking for CUDA without one is an
    error rather than a silent fall-back.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and data_parallel_world()[0] and "LOCAL_RANK" in os.environ:
        # one process per GPU under torchrun: each takes its own
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        ) from exc
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible"
            )
    return resolved


def data_parallel_world():
    """``(world_size, rank)`` of the default ``torch.distributed`` process group, or
    ``(0, 0)`` when none is initialised (training is then single-process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 0, 0


def loadable_device(device, owner="the model") -> torch.device:
    """The device an unpickled model can live on, closest to the one it was saved from.

    A model saved from ``cuda:N`` loads on ``cuda:N`` when it exists, on the
    current CUDA device when this machine has fewer GPUs, and on the CPU when
    it has none; each move is announced by a ``UserWarning`` (skorch's
    ``map_location`` behaviour).
    """
    device = torch.device(device)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        warnings.warn(f"{owner} was fitted on {device} but CUDA is not available; "
                      "loading it on the CPU", UserWarning, stacklevel=3)
        return torch.device("cpu")
    if device.index is not None and device.index >= torch.cuda.device_count():
        here = torch.device("cuda", torch.cuda.current_device())
        warnings.warn(f"{owner} was fitted on {device} but this machine has "
                      f"{torch.cuda.device_count()} CUDA device(s); loading it on {here}",
                      UserWarning, stacklevel=3)
        return here
    return device
