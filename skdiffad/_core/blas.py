"""NumPy's BLAS for the thin float32 products of the nearest-sample searches on the CPU.

A query block against a few dozen values per stored sample (the projected bound's
coordinates, an index's list centres) is a product bound by writing its output. On the
2-core AMD CPU of our benchmarks, torch's CPU product (MKL) took 3 to 6 times as long
as NumPy's (OpenBLAS) for these shapes, and its row-wise ``argmin`` 10 times as long.
The searches that use these products only choose candidates: what they return is
decided by distances measured afterwards, so the BLAS's rounding never shows in a
score.
"""

from __future__ import annotations

__all__ = ["one_thread"]

_CONTROLLER = None


class one_thread:
    """NumPy's BLAS on one thread for the block it wraps: the products are small, and
    BLAS threads waiting beside torch's own cost more than they share."""

    def __enter__(self):
        global _CONTROLLER
        self._limit = None
        try:
            if _CONTROLLER is None:
                from threadpoolctl import ThreadpoolController

                _CONTROLLER = ThreadpoolController().select(user_api="blas")
            if any(info["num_threads"] != 1 for info in _CONTROLLER.info()):
                self._limit = _CONTROLLER.limit(limits=1)
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            pass
        return self

    def __exit__(self, *exc):
        if self._limit is not None:
            self._limit.restore_original_limits()
        return False
