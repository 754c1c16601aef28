"""Resolving ``device=`` and finding a home for a model fitted on another machine.

CUDA is simulated by monkeypatching ``torch.cuda``, so every branch runs on a
CPU-only machine too.
"""

import warnings

import pytest
import torch

from skdiffad._core import loadable_device, resolve_device


def simulate_gpus(monkeypatch, count, current=0):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current)


# ------------------------------------------------------------ resolve_device
@pytest.mark.parametrize(("count", "expected"), [(0, "cpu"), (2, "cuda")])
def test_auto_picks_cuda_when_a_gpu_is_visible(monkeypatch, count, expected):
    simulate_gpus(monkeypatch, count)
    assert resolve_device("auto") == torch.device(expected)


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu"), "cuda", "cuda:1",
                                    torch.device("cuda", 0)])
def test_explicit_devices_resolve_to_themselves(monkeypatch, device):
    simulate_gpus(monkeypatch, 2)
    assert resolve_device(device) == torch.device(device)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "", None, 3.5])
def test_strings_that_are_not_devices_raise(device):
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu'"):
        resolve_device(device)


def test_devices_other_than_cpu_and_cuda_raise():
    with pytest.raises(ValueError, match=r"device must be .*got 'meta'"):
        resolve_device("meta")


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_raises(monkeypatch, device):
    simulate_gpus(monkeypatch, 0)
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device(device)


def test_a_gpu_beyond_the_visible_ones_raises(monkeypatch):
    simulate_gpus(monkeypatch, 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ValueError, match=r"'cuda:2' was requested but only 2 CUDA device"):
        resolve_device("cuda:2")


# ----------------------------------------------------------- loadable_device
def test_a_gpu_model_loads_on_the_cpu_without_cuda(monkeypatch):
    simulate_gpus(monkeypatch, 0)
    with pytest.warns(UserWarning, match="the model was fitted on cuda:1 but CUDA is not"):
        assert loadable_device("cuda:1") == torch.device("cpu")
    with pytest.warns(UserWarning, match="my detector was fitted on cuda"):
        assert loadable_device(torch.device("cuda"), "my detector") == torch.device("cpu")


def test_a_model_from_a_missing_gpu_loads_on_the_current_one(monkeypatch):
    simulate_gpus(monkeypatch, 1)
    with pytest.warns(UserWarning, match=r"fitted on cuda:1 but this machine has 1 CUDA "
                                         r"device\(s\); loading it on cuda:0"):
        assert loadable_device("cuda:1") == torch.device("cuda:0")
    simulate_gpus(monkeypatch, 2, current=1)
    with pytest.warns(UserWarning, match="loading it on cuda:1"):
        assert loadable_device("cuda:5") == torch.device("cuda:1")


@pytest.mark.parametrize(("count", "device"), [(1, "cuda:0"), (2, "cuda:1"), (1, "cuda"),
                                               (0, "cpu"), (2, "cpu")])
def test_a_device_that_exists_is_kept_silently(monkeypatch, count, device):
    simulate_gpus(monkeypatch, count)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert loadable_device(device) == torch.device(device)
