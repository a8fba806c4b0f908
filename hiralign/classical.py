"""A training-free hyperspectral denoiser: noise whitening, a spectral subspace, NLM and a DCT Wiener stage.

Hyperspectral scenes are spectrally low-rank: after each band is divided by its noise level
(or, for Poisson–Gaussian sensor noise, variance-stabilised), a handful of principal
components carry the signal and the rest is white noise of unit variance. Projecting onto
those k components removes the noise of the other B − k dimensions at once, and each
eigen-image — still white unit-variance noise on a smooth image — is then denoised in two
steps, as BM3D does without its block matching: non-local means gives a pilot estimate, and
an empirical Wiener filter in sliding 8×8 DCT windows shrinks the *noisy* eigen-image's
coefficients by pilot² / (pilot² + σ²). The pilot decides which coefficients are signal;
the values come from the noisy data, so the NLM's over-smoothing of fine texture is undone.
This is the subspace idea of FastHyDe (Zhuang & Bioucas-Dias, "Fast hyperspectral image
denoising and inpainting based on low-rank and sparse representations", IEEE JSTARS 2018)
with scikit-image's fast NLM (Buades et al.; Darbon et al.'s integral-image form) and a
Wiener stage of our own (Dabov et al. 2007, step 2, on fixed windows) in place of BM3D, so
it needs no optional package and runs in seconds.

Measured (docs/benchmarks.md): on the centred 128² crops of the KAIST and CAVE scenes under
``gaussian`` the Wiener stage adds 0.4–0.7 dB to the NLM-only denoiser, which already led
BM4D by 4–6 dB; on the simulated IMEC captures (``sensor``, stabilised noise) 0.9–1.5 dB,
which puts it ahead of BM4D at the real captures' noise level (44.46 vs 44.24 dB).

It models noise only: stripes, impulses and dead lines (``complex``), blur and missing
pixels survive it.
"""
from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError
from hiralign.outliers import column_offsets, masked_coefficients, unreliable_mask
from hiralign.progress import Progress, as_progress

if TYPE_CHECKING:
    from hiralign.noise import NoiseModel

#: MAD → σ for Gaussian noise (the median of |N(0, 1)| is 0.6745).
MAD_TO_SIGMA: float = 1 / 0.6745
#: How eigen-images can be denoised (:attr:`SubspaceConfig.eigen_filter`).
EIGEN_FILTERS: tuple[str, ...] = ("nlm", "bm3d")
#: bm3d's compiled thread pool aborts the process when two threads call it at once (a GUI
#: export beside a run, or the pool below), so every call takes this lock.
_BM3D_LOCK = threading.Lock()
#: Clean 2×2 blocks a band needs for a masked noise estimate (±15 % at 1σ from 32 MAD samples).
MIN_NOISE_BLOCKS: int = 32


@dataclasses.dataclass(frozen=True)
class SubspaceConfig:
    """Settings of :func:`subspace_denoise`.

    Attributes:
        components: signal subspace dimension k; 0 chooses it from the whitened spectrum's
            eigenvalues (those above ``threshold``, at least ``min_components``).
        min_components: the smallest automatic k. 4 since session 7: with the Wiener stage and
            a 12² window the fourth component pays (256² scenes, ``gaussian``, seed 0: KAIST
            41.28 → 41.67 dB, CAVE 37.77 → 38.28; seed 7 and the airborne crops: +0.29, +0.96,
            +0.02); at the session-5 settings 4 / 5 / 6 gave KAIST 41.26 / 41.06 / 40.92, CAVE
            38.14 / 38.14 / 38.04 and CAVE ``complex`` 34.65 / 33.50 / 32.36 dB. Session 4 (NLM
            alone) measured 3 best of 2 / 3 / 4 / 6 on 128² crops.
        threshold: an eigenvalue of the whitened covariance (noise = 1) above this is
            signal (0.3 × the noise variance and more; the Marchenko–Pastur edge of pure noise
            is ≈ 1.03 for 16 bands over 256² pixels). 1.3 measured best of 3 / 2 / 1.5 / 1.3 on
            the simulated IMEC captures (4× variance: 40.06 / 40.06 / 40.66 / 40.96 dB) and
            leaves the KAIST and CAVE crops at k = 3.
        stabilised_threshold: the same with a noise model (the ``sensor`` task), whose
            whitening is exact rather than estimated: 0 keeps every component (up to
            ``max_components``) and lets the Wiener stage shrink the pure-noise ones. On the
            simulated IMEC captures at the real noise level, all 16 / λ > 1.015 / λ > 1.032:
            44.46 / 44.41 / 44.38 dB at h = 0.6; at h = 0.8 all 16 / λ > 1.1 / λ > 1.3: 44.29
            / 44.08 / 43.43 (weak components carry the fine detail of a low-noise capture).
            A blind σ per band is only estimated (a few % error), so its pure-noise
            eigenvalues scatter above 1 and ``threshold`` stays high: on the KAIST crops
            k = 3 / 4 / 6 gave 33.04 / 32.93 / 32.57 dB (PSNR with the clean maximum as peak,
            the real-sensor benchmark's; docs/benchmarks.md uses the protocol's).
        max_components: the largest automatic k (bounds the cost on 200+-band cubes).
        strength: NLM filtering strength h in units of the (unit) noise σ, for a blind σ
            per band (no noise model). 0.8 since session 7: on the 256² KAIST / CAVE scenes
            (seed 0) 0.45 / 0.6 / 0.8 gave 40.69 / 40.96 / 41.07 and 37.51 / 37.66 / 37.71 dB
            under ``gaussian`` and 36.87 / 37.57 / 38.22 and 34.11 / 34.65 / 35.17 under
            ``complex``; 1.0 helped held-out ``complex`` further (+0.4–0.8 dB) but lost up to
            0.12 under ``gaussian``, and ``eigen_noise`` gives ``complex`` most of that instead.
        stabilised_strength: the same with a noise model (the ``sensor`` task). On the
            simulated IMEC captures (every component) 0.5 / 0.6 / 0.8 / 1.0 gave 44.50 /
            44.46 / 44.29 / 44.08 dB at the real noise level (0.6 / 0.8 with the 12² Wiener
            window: 44.56 / 44.36), so the stabilised path keeps 0.6.
        patch_size: NLM patch side in pixels.
        patch_distance: NLM search radius in pixels, for a blind σ per band. 9 since session 9:
            against 6 it lowers SAM on every blind set (256² KAIST / CAVE, seed 0, ``gaussian``
            3.31 → 3.27°, 8.43 → 8.09°, ``complex`` 5.81 → 5.67°, 14.15 → 13.67°; seed 7 and the
            airborne crops −0.03…−0.81°) at −0.02…+0.14 dB PSNR, for 1.28× the denoiser's time
            (1.05 → 1.34 s per 256² × 31, ``benchmarks/bench_classical.py``).
        stabilised_patch_distance: the same with a noise model (the ``sensor`` task): 9 cost the
            simulated IMEC captures 0.07 / 0.03 dB (real noise / 4× variance) for ≤ 0.02° of SAM,
            so the stabilised path keeps 6.
        wiener: run the DCT Wiener stage after NLM (False: NLM alone, the session-4 denoiser).
        wiener_patch: side of the Wiener DCT windows (px). 12 since session 7: against 8 it
            adds 0.06–0.23 dB on every set measured (256² KAIST / CAVE ``gaussian`` 40.96 →
            41.19, 37.66 → 37.74, ``complex`` 37.57 → 37.73, 34.65 → 34.71; the simulated IMEC
            captures 44.46 → 44.56, 41.95 → 42.07 (4× variance), 40.48 → 40.63 (4× darker));
            with a noise model, where nothing else changed, the denoiser went 1.64 → 2.32 s per
            256² × 16 capture (``benchmarks/bench_classical.py``); 16 was within ±0.08 dB of 12.
        wiener_step: stride between windows (px); 1 adds ≤ 0.07 dB at twice the time.
        robust: leave stuck values and dead lines out of every fit and estimate column
            stripes (:mod:`hiralign.outliers`); the ``complex`` task's impulses, dead lines
            and stripes then cost little (KAIST 128² crops: 36.78 dB / 7.0° against 18.5 dB
            without, and the shipped complex model's 28.4 dB / 19.6°). On clean-noise data
            the mask is empty and the offsets insignificant: the result is unchanged.
        destripe_passes: fit → column offsets → refit rounds (1 measured within 0.06 dB of 2
            at 70 % of the time).
        eigen_noise: estimate each eigen-image's noise σ (MAD of its finest Haar detail, at
            least the whitened 1) and filter at that level. None (auto): only where outliers
            were found (:func:`~hiralign.outliers.unreliable_mask`), since impulses, dead
            lines and stripe residue leave more than unit noise after whitening: ``complex``
            256² KAIST / CAVE 38.38 → 38.67, 35.22 → 35.27 (seed 7: 37.78 → 38.00, 33.84 →
            34.82, airborne crops 32.04 → 32.74); always on, the texture of the leading
            eigen-images inflates the estimate on clean-noise data (airborne ``gaussian``
            35.87 → 34.71), so auto leaves those unchanged.
        eigen_filter: how each eigen-image is denoised: ``"nlm"`` (NLM pilot + DCT Wiener,
            built in) or ``"bm3d"`` — BM3D from the optional ``bm3d`` package (free for
            non-commercial use, like bm4d), FastHyDe's own choice: block matching finds the
            similar patches the fixed Wiener windows cannot. Measured against ``"nlm"``
            (session 9, docs/benchmarks.md): ``gaussian`` KAIST / CAVE +0.31 / +0.31 dB
            (seed 7: +0.23 / +0.29), the simulated IMEC captures +0.36…+0.38 dB with lower
            SAM, at 6–16× the time (a 256×512×16 IMEC capture 87 s instead of 5.4); on every
            ``complex`` set −0.1…−1.1 dB, so where the robust fit finds outliers the
            eigen-images get NLM + Wiener even with ``"bm3d"``.
    """

    components: int = 0
    min_components: int = 4
    threshold: float = 1.3
    stabilised_threshold: float = 0.0
    max_components: int = 32
    strength: float = 0.8
    stabilised_strength: float = 0.6
    patch_size: int = 5
    patch_distance: int = 9
    stabilised_patch_distance: int = 6
    wiener: bool = True
    wiener_patch: int = 12
    wiener_step: int = 2
    robust: bool = True
    destripe_passes: int = 1
    eigen_noise: bool | None = None
    eigen_filter: str = "nlm"

    def __post_init__(self) -> None:
        if self.eigen_filter not in EIGEN_FILTERS:
            raise ConfigError(f"unknown eigen-image filter {self.eigen_filter!r}; choose {' or '.join(EIGEN_FILTERS)}")
        if self.components < 0 or self.min_components < 1:
            raise ConfigError("subspace components must be ≥ 0 (0: automatic) and min_components ≥ 1")
        if self.threshold <= 1.0:
            raise ConfigError(f"the subspace threshold must exceed the noise eigenvalue 1 (got {self.threshold})")
        if self.stabilised_threshold < 0 or self.max_components < self.min_components:
            raise ConfigError("the stabilised threshold must be ≥ 0 and max_components ≥ min_components")
        if (self.strength <= 0 or self.stabilised_strength <= 0 or self.patch_size < 1 or self.patch_distance < 1
                or self.stabilised_patch_distance < 1):
            raise ConfigError("NLM strength, patch size and patch distance must be positive")
        if self.destripe_passes < 0:
            raise ConfigError("destripe_passes must be ≥ 0")
        if self.wiener_patch < 2 or not 1 <= self.wiener_step <= self.wiener_patch:
            raise ConfigError("the Wiener window must be ≥ 2 px and its step between 1 and the window side")


def noise_sigma(data: np.ndarray, unreliable: np.ndarray | None = None) -> np.ndarray:
    """Blind per-band Gaussian noise level: MAD of the finest Haar diagonal detail.

    Args:
        data: (H, W, B) cube, H and W ≥ 2 (an odd last row/column is ignored).
        unreliable: (H, W, B) bool samples to leave out (:func:`hiralign.outliers.unreliable_mask`):
            a 2×2 block touching one is skipped, so impulses do not inflate σ. A band with
            fewer than :data:`MIN_NOISE_BLOCKS` clean blocks falls back to all of them.

    Returns:
        (B,) float64 σ per band, in the cube's units; floored at 1e-6 (a clean or constant
        band would otherwise give 0 and blow up the normalisation).
    """
    from hiralign.noise import haar_samples

    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 3 or min(x.shape[:2]) < 2:
        raise InputError(f"noise estimation needs an (H, W, B) cube of at least 2×2 pixels, got shape {x.shape}")
    # the same orthonormal Haar HH detail as hiralign.noise; plain MAD as the BM4D recipe has it
    detail, _ = haar_samples(np.moveaxis(x, -1, 0))
    mad = np.median(np.abs(detail.reshape(x.shape[2], -1)), axis=1)
    if unreliable is not None and np.any(unreliable):
        masked, _ = haar_samples(np.moveaxis(x, -1, 0), np.moveaxis(np.asarray(unreliable, dtype=bool), -1, 0))
        flat = np.abs(masked.reshape(x.shape[2], -1))
        enough = np.sum(np.isfinite(flat), axis=1) >= MIN_NOISE_BLOCKS
        if enough.any():
            mad[enough] = np.nanmedian(flat[enough], axis=1)
    return np.maximum(mad * MAD_TO_SIGMA, 1e-6)


def stabilise(data: np.ndarray, noise: NoiseModel) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """A per-band variance-stabilising transform of Poisson–Gaussian data, and its inverse.

    Bands whose noise is signal-dependent (:attr:`NoiseModel.signal_dependent`) get the
    generalised Anscombe transform z = 2·√(y/a + 3/8 + b/a²) (Mäkitalo & Foi 2013, gain a,
    read variance b), whose noise is ≈ N(0, 1); its inverse is the asymptotically unbiased
    y = a·((D/2)² − 1/8 − b/a²) (a plain algebraic inverse would bias dark pixels by the
    square root's curvature). The other bands are divided by their σ = √(a·mean + b).

    Args:
        data: (H, W, B) noisy cube on the noise model's scale.
        noise: its per-band model (B bands).

    Returns:
        (stabilised float64 cube with unit noise, inverse mapping a denoised stabilised cube back).
    """
    a, b = noise.arrays()
    mean = np.asarray(noise.mean, dtype=np.float64)
    poisson = np.asarray(noise.signal_dependent, dtype=bool) & (a > 0)
    a_safe = np.where(poisson, a, 1.0)
    read = b / a_safe ** 2
    sigma = np.sqrt(np.maximum(a * np.maximum(mean, 0.0) + b, 1e-12))
    y = np.asarray(data, dtype=np.float64)
    z = np.where(poisson, 2.0 * np.sqrt(np.maximum(y / a_safe + 0.375 + read, 0.0)), y / sigma)

    def invert(d: np.ndarray) -> np.ndarray:
        d = np.asarray(d, dtype=np.float64)
        return np.where(poisson, a_safe * (np.maximum(d, 0.0) ** 2 / 4 - 0.125 - read), d * sigma)

    return z, invert


def whiten(data: np.ndarray, noise: NoiseModel | None = None,
           unreliable: np.ndarray | None = None) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Unit-variance noise in every band, and the inverse mapping.

    With a noise model the Poisson–Gaussian noise is stabilised
    (:func:`stabilise`); without one each band is divided by its blind σ (:func:`noise_sigma`,
    leaving out the ``unreliable`` samples).

    Returns:
        ((H, W, B) float64 whitened cube, callable mapping a whitened cube back).
    """
    if noise is not None:
        if noise.n_bands != data.shape[2]:
            raise InputError(f"a noise model of {noise.n_bands} bands for a cube of {data.shape[2]} bands")
        return stabilise(data, noise)
    sigma = noise_sigma(data, unreliable)
    return np.asarray(data, dtype=np.float64) / sigma, lambda z: np.asarray(z, dtype=np.float64) * sigma


def signal_subspace(white: np.ndarray, config: SubspaceConfig = SubspaceConfig(), *, stabilised: bool = False,
                    reliable: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mean spectrum, the k leading eigenvectors and all eigenvalues of a whitened cube.

    Args:
        white: (H, W, B) cube whose noise has unit variance in every band.
        config: k, or the thresholds that choose it.
        stabilised: the whitening came from a noise model (``config.stabilised_threshold``
            applies), not from a blind σ (``config.threshold``).
        reliable: (H, W, B) bool samples to use (None: all). The mean and covariance are
            then taken over the pixels reliable in each band (pair of bands).

    Returns:
        (mean (B,), basis (B, k) orthonormal columns, eigenvalues (B,) in decreasing order).
    """
    bands = white.shape[2]
    pixels = white.reshape(-1, bands)
    weights = None if reliable is None else reliable.reshape(-1, bands).astype(np.float64)
    if weights is None:
        mean = pixels.mean(axis=0)
    else:
        mean = np.sum(np.where(weights > 0, pixels, 0.0), axis=0) / np.maximum(weights.sum(axis=0), 1.0)
    # B × B covariance accumulated in row blocks (bounded memory on large cubes); with a mask
    # each entry averages over the pixels reliable in both of its bands
    cov = np.zeros((bands, bands))
    pairs = np.zeros((bands, bands))
    for start in range(0, pixels.shape[0], 65536):
        block = pixels[start:start + 65536] - mean
        if weights is None:
            pairs += block.shape[0]
        else:
            w = weights[start:start + 65536]
            block = np.where(w > 0, block, 0.0)
            pairs += w.T @ w
        cov += block.T @ block
    cov /= np.maximum(pairs - 1, 1)
    values, vectors = np.linalg.eigh(cov)
    values, vectors = values[::-1], vectors[:, ::-1]
    threshold = config.stabilised_threshold if stabilised else config.threshold
    automatic = min(max(int(np.sum(values > threshold)), config.min_components), config.max_components)
    k = min(config.components or automatic, bands)
    return mean, vectors[:, :k], values


def dct_wiener(noisy: np.ndarray, pilot: np.ndarray, *, patch: int = 8, step: int = 2, sigma: float = 1.0,
               chunk_rows: int = 16) -> np.ndarray:
    """Empirical Wiener filtering of an image in sliding DCT windows, guided by a pilot estimate.

    Every ``patch``² window (stride ``step``) of the noisy image is transformed by an
    orthonormal 2-D DCT, each coefficient multiplied by g = P² / (P² + σ²) with P the
    pilot's coefficient, transformed back and aggregated with BM3D's weights 1 / (σ²·Σg²)
    (windows the filter trusts count more). The image is reflect-padded by one window so
    the borders get as many windows as the inside.

    Args:
        noisy: (H, W) image with white Gaussian noise of std ``sigma``.
        pilot: (H, W) first estimate of the clean image (e.g. NLM of ``noisy``).
        patch: window side (px).
        step: window stride (px).
        sigma: the noise std, in the image's units.
        chunk_rows: window rows transformed at once (bounds memory to about
            chunk_rows·(W/step)·patch² float64 per array).

    Returns:
        (H, W) float64 filtered image.
    """
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy.fft import dctn, idctn

    height, width = noisy.shape
    padded_noisy = np.pad(np.asarray(noisy, dtype=np.float64), patch, mode="symmetric")
    padded_pilot = np.pad(np.asarray(pilot, dtype=np.float64), patch, mode="symmetric")
    windows_noisy = sliding_window_view(padded_noisy, (patch, patch))[::step, ::step]
    windows_pilot = sliding_window_view(padded_pilot, (patch, patch))[::step, ::step]
    rows, cols = windows_noisy.shape[:2]
    total = np.zeros_like(padded_noisy)
    weights = np.zeros_like(padded_noisy)
    variance = float(sigma) ** 2
    for r0 in range(0, rows, chunk_rows):
        r1 = min(r0 + chunk_rows, rows)
        coef_pilot = dctn(windows_pilot[r0:r1], axes=(-2, -1), norm="ortho")
        gain = coef_pilot ** 2 / (coef_pilot ** 2 + variance)
        estimate = idctn(dctn(windows_noisy[r0:r1], axes=(-2, -1), norm="ortho") * gain, axes=(-2, -1), norm="ortho")
        weight = 1.0 / (variance * np.sum(gain ** 2, axis=(-2, -1)) + 1e-12)
        estimate *= weight[..., None, None]
        top = r0 * step
        for i in range(patch):
            for j in range(patch):
                rows_at = slice(top + i, top + i + (r1 - r0) * step, step)
                cols_at = slice(j, j + cols * step, step)
                total[rows_at, cols_at] += estimate[:, :, i, j]
                weights[rows_at, cols_at] += weight
    filtered = total / np.maximum(weights, 1e-300)
    return filtered[patch:patch + height, patch:patch + width]


def bm3d_available() -> bool:
    """Whether the optional ``bm3d`` package can be imported."""
    import importlib.util

    return importlib.util.find_spec("bm3d") is not None


def denoise_eigen_image(image: np.ndarray, config: SubspaceConfig = SubspaceConfig()) -> np.ndarray:
    """One (H, W) eigen-image with unit white noise: NLM, then (``config.wiener``) the DCT Wiener stage.

    With ``config.eigen_filter == "bm3d"``, BM3D (both of its steps) at the same noise level instead.
    """
    sigma = max(1.0, float(noise_sigma(image[..., None])[0])) if config.eigen_noise else 1.0
    if config.eigen_filter == "bm3d":
        import bm3d

        with _BM3D_LOCK:
            return np.asarray(bm3d.bm3d(np.asarray(image, dtype=np.float64), sigma_psd=sigma), dtype=np.float64)
    from skimage.restoration import denoise_nl_means

    pilot = denoise_nl_means(image, h=config.strength * sigma, sigma=sigma, patch_size=config.patch_size,
                             patch_distance=config.patch_distance, fast_mode=True)
    if not config.wiener:
        return pilot
    return dct_wiener(image, pilot, patch=config.wiener_patch, step=config.wiener_step, sigma=sigma)


def subspace_denoise(cube: Cube, config: SubspaceConfig = SubspaceConfig(), *, noise: NoiseModel | None = None,
                     progress: Progress | None = None, name: str | None = None, threads: int = 2) -> Cube:
    """Denoise a cube in its own spectral subspace (see the module docstring).

    Args:
        cube: (H, W, B) noisy cube, H and W ≥ 2, any number of bands ≥ 2.
        config: subspace and NLM settings.
        noise: the cube's Poisson–Gaussian noise model on its own scale (the ``sensor``
            task); None estimates a white σ per band.
        progress: one step per eigen-image; cancellable between them.
        name: the result's name (default the cube's).
        threads: eigen-images denoised at once (scikit-image's NLM releases the GIL).

    Returns:
        (H, W, B) float32 cube with ``cube``'s band metadata.

    Cost: O(H·W·B·k) for the projection, k NLM passes of O(H·W·(2·patch_distance + 1)²) and
    k Wiener passes of O(H·W·patch²·log patch / step²); with two threads 1.3 s for 256² × 31
    (k = 4) and 2.7 s for a stabilised 256² × 16 capture (k = 16) (``benchmarks/bench_classical.py``);
    memory a few float64 copies of the cube.
    """
    progress = as_progress(progress)
    if cube.n_bands < 2 or min(cube.shape[:2]) < 2:
        raise InputError(f"{cube.name}: subspace denoising needs ≥ 2 bands and ≥ 2×2 pixels, got {cube.shape}")
    if config.eigen_filter == "bm3d":
        if not bm3d_available():
            raise ConfigError("the bm3d eigen-image filter needs the optional bm3d package (pip install bm3d; "
                              "free for non-commercial use)")
        threads = 1  # the calls are serialised by _BM3D_LOCK, and bm3d runs its own threads
    bad = int(np.size(cube.data) - np.count_nonzero(np.isfinite(cube.data)))
    if bad:
        raise InputError(f"{cube.name}: {bad} values are NaN or infinite; the denoiser needs finite data "
                         "(load with --zero-nonfinite to set them to 0)")
    data = np.asarray(cube.data, dtype=np.float64)
    h, w, bands = data.shape
    unreliable = unreliable_mask(data) if config.robust else np.zeros(data.shape, dtype=bool)
    reliable = ~unreliable
    # masked statistics only where something is masked (the usual noise-only cube costs nothing extra)
    used = reliable if unreliable.any() else None
    white, unwhiten = whiten(data, noise, unreliable)
    stabilised = noise is not None
    mean, basis, values = signal_subspace(white, config, stabilised=stabilised, reliable=used)
    eigen = masked_coefficients(white, reliable, mean, basis)
    if config.robust:
        for _ in range(config.destripe_passes):
            # the stripes are read off a fit on the components the eigenvalue test calls signal: a
            # component added only to reach min_components can be a striped band's own
            threshold = config.stabilised_threshold if stabilised else config.threshold
            signal = min(basis.shape[1], max(1, int(np.sum(values > threshold))))
            fit = (eigen[..., :signal].reshape(-1, signal) @ basis[:, :signal].T + mean).reshape(h, w, bands)
            offsets = column_offsets(white - fit, reliable)
            if not offsets.any():
                break
            white = white - offsets[None]  # stripes are constant down a column
            mean, basis, values = signal_subspace(white, config, stabilised=stabilised, reliable=used)
            eigen = masked_coefficients(white, reliable, mean, basis)
    k = eigen.shape[2]
    if config.eigen_noise is None:  # auto: where outliers were found, the whitened noise is not unit
        config = dataclasses.replace(config, eigen_noise=bool(unreliable.any()))
    if config.eigen_filter == "bm3d" and unreliable.any():
        # the residue of impulses, dead lines and stripes is not Gaussian, and BM3D's block matching
        # then groups it as structure: on every complex set it lost 0.1–1.1 dB to NLM + Wiener
        config = dataclasses.replace(config, eigen_filter="nlm")
    if stabilised:  # denoise_eigen_image reads one strength and one search radius
        config = dataclasses.replace(config, strength=config.stabilised_strength,
                                     patch_distance=config.stabilised_patch_distance)
    clean = np.empty_like(eigen)
    progress.check()
    # progress and cancellation stay on the calling thread; the pool only filters
    with ThreadPoolExecutor(max_workers=max(1, min(threads, k))) as pool:
        for i, out in enumerate(pool.map(lambda j: denoise_eigen_image(np.ascontiguousarray(eigen[..., j]), config),
                                                      range(k))):
            clean[..., i] = out
            progress.report(i + 1, k, f"eigen-image {i + 1}/{k}")
            progress.check()
    restored = (clean.reshape(-1, k) @ basis.T + mean).reshape(h, w, bands)
    out = unwhiten(restored)
    empty = ~reliable.any(axis=(0, 1))
    out[..., empty] = data[..., empty]  # a band without one reliable sample (e.g. zeroed absorption bands) is kept
    return cube.with_data(np.asarray(out, dtype=np.float32), name=name or cube.name)


__all__ = ["EIGEN_FILTERS", "MAD_TO_SIGMA", "SubspaceConfig", "bm3d_available", "dct_wiener", "denoise_eigen_image",
           "noise_sigma", "signal_subspace", "stabilise", "subspace_denoise", "whiten"]
