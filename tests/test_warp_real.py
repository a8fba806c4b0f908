"""Known-motion checks of the warp on real KAIST scenes (issue 3 "Done when").

The guide is Γ of the truly moved proxy, so the synthesized HSI can be compared with
the moved proxy itself: spectral PSNR per band (peak 1), 16-px border excluded.
Crops are 96×96 to keep the suite fast; the floors are the issue's.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_file

from hiralign.warp import WarpConfig, warp
from hiralign.warp.motions import move, spectral_psnr

pytestmark = [pytest.mark.data, pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

#: Bands nearest 660/550/470 nm in KAIST (420–720 nm, 10 nm steps).
KAIST_RGB = [24, 13, 5]


def kaist_crop(scene: int, top: int, left: int, side: int = 96) -> np.ndarray:
    """(side, side, 31) float32 crop of a KAIST v7.3 MAT scene, read with h5py."""
    import h5py

    path = shared_file("kaist", f"scene{scene:02d}.mat")
    with h5py.File(path, "r") as f:
        data = f["cube"][:, left:left + side, top:top + side]  # stored (31, W, H)
    return np.ascontiguousarray(np.asarray(data, dtype=np.float32).transpose(2, 1, 0))


@pytest.mark.parametrize("motion,scene,floor", [
    ("identity", 1, 45.0), ("shift", 2, 45.0), ("flip", 3, 35.0), ("zoom", 4, 45.0),
])
def test_known_motion_on_kaist(motion, scene, floor, device):
    proxy = kaist_crop(scene, 80, 80)
    truth = move(proxy, motion)
    guide = np.clip(truth[..., KAIST_RGB], 0.0, 1.0)
    result = warp(proxy, guide, WarpConfig(), proxy_rgb=proxy[..., KAIST_RGB], device=str(device))
    quality = spectral_psnr(result.synthesized, truth, border=16)
    assert quality >= floor, f"{motion}: spectral PSNR {quality:.2f} dB < {floor} dB"
    d = result.diagnostics
    assert d["row_stochastic_error"] < 1e-5 and d["min_weight"] >= 0.0
    if motion == "zoom":
        # better than copying the single best candidate's spectrum
        best = proxy.reshape(-1, proxy.shape[2])[result.candidates[..., 0]]
        assert quality > spectral_psnr(best, truth, border=16)
