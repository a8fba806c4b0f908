"""PSNR / SSIM / SAM against independent references (scikit-image, plain numpy)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hiralign import metrics as M
from hiralign.errors import InputError


@pytest.fixture
def pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(2, 6, 40, 37) reference and a noisy, slightly biased estimate."""
    ref = rng.random((2, 6, 40, 37))
    est = ref + 0.05 * rng.standard_normal(ref.shape) + 0.01
    return est, ref


def _numpy_sam(est: np.ndarray, ref: np.ndarray) -> float:
    """Mean spectral angle (degrees) of a (B, H, W) pair, skipping all-zero spectra."""
    e = est.reshape(est.shape[0], -1).T
    r = ref.reshape(ref.shape[0], -1).T
    keep = (np.linalg.norm(e, axis=1) > 0) & (np.linalg.norm(r, axis=1) > 0)
    e, r = e[keep], r[keep]
    cos = np.sum(e * r, axis=1) / (np.linalg.norm(e, axis=1) * np.linalg.norm(r, axis=1))
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))).mean())


def test_psnr_matches_scikit_image_per_band(pair, device: torch.device) -> None:
    est, ref = pair
    ours = M.psnr_per_band(torch.as_tensor(est, device=device), torch.as_tensor(ref, device=device)).cpu()
    expected = [[peak_signal_noise_ratio(ref[n, b], est[n, b], data_range=1.0) for b in range(6)]
                for n in range(2)]
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(M.psnr(est, ref).numpy(), np.mean(expected, axis=1), rtol=1e-10)


def test_ssim_matches_scikit_image_gaussian_convention(pair, device: torch.device) -> None:
    est, ref = pair
    ours = M.ssim_per_band(torch.as_tensor(est, device=device), torch.as_tensor(ref, device=device)).cpu()
    expected = [[structural_similarity(ref[n, b], est[n, b], data_range=1.0, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False) for b in range(6)]
                for n in range(2)]
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-10)
    np.testing.assert_allclose(M.ssim(est, ref).numpy(), np.mean(expected, axis=1), atol=1e-10)


def test_ssim_chunking_does_not_change_results(pair, monkeypatch: pytest.MonkeyPatch) -> None:
    est, ref = pair
    whole = M.ssim_per_band(est, ref)
    monkeypatch.setattr(M, "_SSIM_CHUNK_VOXELS", 5 * 40 * 37 * 2)  # two bands per chunk
    assert torch.allclose(M.ssim_per_band(est, ref), whole, atol=1e-14, rtol=0)


def test_sam_matches_numpy_and_skips_zero_spectra(pair, device: torch.device) -> None:
    est, ref = pair
    est = est.copy()
    est[0, :, 3, 4] = 0.0  # an all-zero estimated spectrum
    ref = ref.copy()
    ref[1, :, :5, :] = 0.0  # all-zero reference spectra
    ours = M.sam(torch.as_tensor(est, device=device), torch.as_tensor(ref, device=device)).cpu().numpy()
    np.testing.assert_allclose(ours, [_numpy_sam(est[0], ref[0]), _numpy_sam(est[1], ref[1])], rtol=1e-9)
    angles = M.sam_map(est, ref)
    assert angles.shape == (2, 40, 37)
    assert torch.isnan(angles[0, 3, 4]) and torch.isnan(angles[1, :5]).all()
    assert int(torch.isnan(angles).sum()) == 1 + 5 * 37


def test_sam_is_scale_invariant_and_in_degrees() -> None:
    ref = torch.zeros(2, 1, 1)
    ref[0] = 1.0
    est = torch.zeros(2, 1, 1)
    est[1] = 3.0
    assert float(M.sam(est, ref)) == pytest.approx(90.0)
    x = torch.rand(5, 8, 8) + 0.1
    assert float(M.sam(2.5 * x, x)) < 1e-4


def test_identical_images(device: torch.device) -> None:
    x = torch.rand(2, 4, 16, 16, device=device)
    assert M.psnr(x, x).tolist() == [M.PSNR_CAP_DB] * 2
    assert torch.allclose(M.ssim(x, x).cpu(), torch.ones(2, dtype=torch.float64))
    values = M.all_metrics(x, x)
    assert values == {"psnr": M.PSNR_CAP_DB, "ssim": pytest.approx(1.0), "sam": pytest.approx(0.0, abs=1e-5)}
    assert all(isinstance(v, float) for v in values.values())


def test_single_cube_and_batch_agree(pair) -> None:
    est, ref = pair
    batch = M.all_metrics(est[:1], ref[:1])
    single = M.all_metrics(est[0], ref[0])
    assert batch == pytest.approx(single, rel=1e-12)
    assert M.psnr(est[0], ref[0]).shape == (1,)


def test_all_metrics_averages_images(pair) -> None:
    est, ref = pair
    values = M.all_metrics(est, ref)
    assert values["psnr"] == pytest.approx(float(M.psnr(est, ref).mean()))
    assert 20 < values["psnr"] < 30 and 0 < values["ssim"] < 1 and 0 < values["sam"] < 20


def test_bad_shapes_raise_clear_errors() -> None:
    with pytest.raises(InputError, match=r"shapes differ: \(4, 16, 16\) vs \(4, 16, 17\)"):
        M.psnr(torch.rand(4, 16, 16), torch.rand(4, 16, 17))
    with pytest.raises(InputError, match="too small"):
        M.ssim(torch.rand(4, 8, 8), torch.rand(4, 8, 8))
    with pytest.raises(InputError, match=r"\(N, B, H, W\)"):
        M.sam(torch.rand(16, 16), torch.rand(16, 16))
