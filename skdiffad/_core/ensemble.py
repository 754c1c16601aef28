"""Several models of one input at several scales, fitted and scored side by side.

:class:`ScaleEnsemble` holds one model per member encoding (a window length of
a series, say) and answers the shell's model protocol (``fit``, ``errors``, ``trains``,
``device_``, ``networks_``) for all of them at once: ``errors`` gives one
stream of error blocks per member, and the detector's reduction combines them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ScaleEnsemble"]


class ScaleEnsemble:
    """One model per scale.

    Parameters
    ----------
    members : list of model
        Unfitted models (exact or learned), one per scale, in the order of the
        encoded parts they will see.

    Attributes
    ----------
    trains : bool
        Whether fitting trains networks: whether any member trains.
    device_ : torch.device
        Where the members run (the first member's device).
    networks_ : dict
        ``{"denoiser": tuple of modules}`` when the members are trained
        networks, else empty.
    """

    def __init__(self, members):
        self.members = list(members)

    @property
    def trains(self):
        """Whether any member trains a network."""
        return any(member.trains for member in self.members)

    def fit(self, training, seed, device):
        """Fit member ``i`` on ``training[i]`` with seed ``seed + i``.

        Returns the members' training histories merged (``None`` when no
        member trains): per epoch the mean loss over the members that ran that
        epoch, ``n_iter`` the most epochs, and ``"members"`` every history; the
        record of a single member is its own, with ``"members"`` added.
        """
        histories = [member.fit(part, seed=seed + i, device=device)
                     for i, (member, part) in enumerate(zip(self.members, training))]
        histories = [h for h in histories if h]
        if not histories:
            return None
        if len(histories) == 1:
            return dict(histories[0], members=histories)
        merged = {"members": histories, "n_iter": max(h.get("n_iter", 1) for h in histories)}
        for key in ("loss", "val_loss"):
            curves = [list(h.get(key, [])) for h in histories]
            length = max(map(len, curves))
            merged[key] = [float(np.mean([c[i] for c in curves if i < len(c)]))
                           for i in range(length)]
        return merged

    @property
    def device_(self):
        return self.members[0].device_

    @property
    def networks_(self):
        networks = [getattr(m, "networks_", {}).get("denoiser") for m in self.members]
        return {"denoiser": tuple(networks)} if all(n is not None for n in networks) else {}

    def errors(self, samples, training=False):
        """One error-block stream per member (``None`` for a part not encoded)."""
        return [None if part is None else member.errors(part, training=training)
                for member, part in zip(self.members, samples)]
