"""Feature distance: restorations compared with their image in an encoder's features (DDAD)."""

from __future__ import annotations

import copy

from torch import nn

from ..features import DenoiserFeatures, ModuleFeatures
from ..plans import RECONSTRUCTION_RANGE
from .base import denoiser_of, non_negative_float
from ..scoring import feature_errors
from .reconstruction import Restoring

__all__ = ["Feature"]


def _on_cpu(module):
    return all(t.device.type == "cpu" for t in (*module.parameters(), *module.buffers()))


class Feature(Restoring):
    """DDAD's feature distance, for images ``(C, H, W)``: each image is
    reconstructed over the reconstruction plan's grid of ``t0`` and antithetic
    noise, and every restoration is compared with the image by
    :func:`~skdiffad._core.features.feature_distance_map`; the maps are
    averaged with the plan's weights and shared by the channels. The denoiser
    is trained as for ``"reconstruction"``.

    Parameters
    ----------
    n_grid, n_inference_steps, t0_range, noise
        As for :class:`~skdiffad._core.paradigms.reconstruction.Restoring`.
    guidance : float, default=0.0
        DDAD's conditioning weight of every reconstruction.
    feature_extractor : torch.nn.Module, optional
        The encoder the distance is measured in. ``None`` reads the trained
        denoiser's own down path
        (:class:`~skdiffad._core.features.DenoiserFeatures`, a ``"conv2d"``
        network only). A user module maps a batch ``(n, C, H, W)`` to a tensor
        or a list, tuple or dict of feature maps; it is wrapped in
        :class:`~skdiffad._core.features.ModuleFeatures` (unless it is one),
        copied when the paradigm is built, put in eval mode and never trained.
        The copy is the paradigm's (``feature_extractor``): it moves with the
        model, and is pickled by torch's own pickling of modules (its weights
        on the CPU), so its class must be importable where it is loaded.
    """

    name = "feature"
    options = Restoring.options + ("guidance", "feature_extractor")
    needs_images = True

    def __init__(self, *, n_grid=8, n_inference_steps=5, t0_range=RECONSTRUCTION_RANGE,
                 noise="gaussian", guidance=0.0, feature_extractor=None):
        super().__init__(n_grid=n_grid, n_inference_steps=n_inference_steps,
                         t0_range=t0_range, noise=noise)
        self.guidance = non_negative_float("guidance", guidance)
        if feature_extractor is not None and not isinstance(feature_extractor, nn.Module):
            raise TypeError("feature_extractor must be a torch.nn.Module or None, got "
                            f"{type(feature_extractor).__name__}")
        if feature_extractor is not None:
            if not isinstance(feature_extractor, ModuleFeatures):
                feature_extractor = ModuleFeatures(feature_extractor)
            # a copy: moving it to a device or to eval mode leaves the user's alone
            feature_extractor = copy.deepcopy(feature_extractor).eval()
        self.feature_extractor = feature_extractor

    def network_config(self, network, event_shape, *, n_timesteps, mask_input):
        if self.feature_extractor is None and network.get("name") != "conv2d":
            raise ValueError("paradigm 'feature' without a feature_extractor reads the "
                             "denoiser's encoder, which needs the 'conv2d' network (got "
                             f"{network.get('name')!r})")
        return super().network_config(network, event_shape, n_timesteps=n_timesteps,
                                      mask_input=mask_input)

    def batch_errors(self, networks, schedule, plan, x, mask=None, *, mask_input=False):
        denoiser = denoiser_of(networks)
        extractor = self.feature_extractor
        if extractor is None:
            extractor = DenoiserFeatures(denoiser)
        return feature_errors(extractor, denoiser, schedule, plan, x, mask,
                              mask_input=mask_input)

    def to(self, device):
        if self.feature_extractor is not None:
            self.feature_extractor = self.feature_extractor.to(device)
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        extractor = state["feature_extractor"]
        if extractor is not None and not _on_cpu(extractor):
            state["feature_extractor"] = copy.deepcopy(extractor).to("cpu")
        return state
