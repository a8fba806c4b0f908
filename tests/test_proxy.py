from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError
from hiralign.progress import CallbackProgress, Cancelled
from hiralign.proxy import TileConfig, restore_cube, restore_file, restore_tensor, tile_starts


class LocalNet(nn.Module):
    """A fixed 3×3 box blur per band: translation-equivariant with a 1-px receptive radius."""

    def __init__(self, bands: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(bands, bands, 3, padding=1, groups=bands, bias=False, padding_mode="replicate")
        nn.init.constant_(self.conv.weight, 1 / 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_tile_starts_cover_the_image() -> None:
    for length in (7, 64, 100, 129, 300):
        starts = tile_starts(length, 64, 16)
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s:s + 64] = True
        assert covered.all() and starts[0] == 0 and starts[-1] + min(64, length) == length


def test_tiled_equals_whole_image_away_from_tile_edges(device: torch.device) -> None:
    torch.manual_seed(0)
    x = torch.rand(5, 70, 90)
    model = LocalNet(5).to(device)
    whole = model(x[None].to(device))[0].cpu()
    tiled = restore_tensor(model, x, tiles=TileConfig(tile=32, overlap=8, batch=3))
    # A 1-px receptive field differs from the whole-image result only where tiles were cut and
    # blended; with 8-px overlaps and smooth weights the difference stays tiny.
    assert torch.allclose(tiled, whole, atol=2e-2)
    assert (tiled - whole).abs().mean() < 2e-3


def test_identity_model_is_reproduced_exactly() -> None:
    x = torch.rand(3, 50, 61)
    out = restore_tensor(nn.Identity(), x, tiles=TileConfig(tile=16, overlap=4))
    torch.testing.assert_close(out, x)


def test_super_resolution_scale_is_honoured() -> None:
    up = nn.Upsample(scale_factor=4, mode="nearest")
    x = torch.rand(2, 20, 30)
    out = restore_tensor(up, x, scale=4, tiles=TileConfig(tile=16, overlap=4))
    assert out.shape == (2, 80, 120)
    torch.testing.assert_close(out, up(x[None])[0])
    with pytest.raises(InputError, match="expected"):
        restore_tensor(up, x, scale=1, tiles=TileConfig(tile=16, overlap=4))


def test_restore_cube_keeps_metadata_and_reports_progress(small_cube: Cube) -> None:
    seen: list[tuple[float, float]] = []
    progress = CallbackProgress(on_report=lambda d, t, m: seen.append((d, t)))
    out = restore_cube(nn.Identity(), small_cube, tiles=TileConfig(tile=16, overlap=4, batch=2),
                       progress=progress, name="restored")
    np.testing.assert_allclose(out.data, small_cube.data, atol=1e-6)
    assert out.name == "restored" and out.wavelengths is not None
    assert seen[-1][0] == seen[-1][1] and len(seen) > 1


def test_cancel_stops_between_batches(small_cube: Cube) -> None:
    progress = CallbackProgress()
    progress.token.cancel()
    with pytest.raises(Cancelled):
        restore_cube(nn.Identity(), small_cube, tiles=TileConfig(tile=16, overlap=4), progress=progress)


def test_bad_settings_and_inputs_are_refused(small_cube: Cube) -> None:
    with pytest.raises(ConfigError):
        TileConfig(tile=4)
    with pytest.raises(ConfigError):
        TileConfig(tile=32, overlap=30)
    data = small_cube.data.copy()
    data[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        restore_cube(nn.Identity(), small_cube.with_data(data))


# ------------------------------------------------------------------------- file to file
def _envi_u16(folder, data, extra=""):
    """An ENVI BIL uint16 pair written by hand (independent of the code under test)."""
    h, w, b = data.shape
    (folder / "in.img").write_bytes(np.ascontiguousarray(data.transpose(0, 2, 1)).astype("<u2").tobytes())
    (folder / "in.hdr").write_text(f"ENVI\nsamples = {w}\nlines = {h}\nbands = {b}\nheader offset = 0\n"
                                   f"data type = 12\ninterleave = bil\nbyte order = 0\n{extra}")
    return folder / "in.hdr"


def test_restore_file_streams_to_the_same_result_as_in_memory(tmp_path) -> None:
    from hiralign.io import load

    rng = np.random.default_rng(3)
    counts = rng.integers(0, 4000, size=(70, 90, 5)).astype(np.uint16)
    counts[3, 4, :] = 65535
    src = _envi_u16(tmp_path, counts, "data ignore value = 65535\nwavelength = {450, 500, 550, 600, 650}\n")
    model = LocalNet(5)
    tiles = TileConfig(tile=32, overlap=8, batch=3)
    info = restore_file(model, src, tmp_path / "out.hdr", tiles=tiles)
    streamed = load(info["output"])
    whole = restore_cube(model, load(src), tiles=tiles)
    np.testing.assert_array_equal(streamed.mask, whole.mask)  # no-data samples stay no-data
    np.testing.assert_allclose(streamed.data, np.where(whole.mask, 0, whole.data), atol=1e-6)
    assert streamed.mask is not None and streamed.mask[3, 4].all() and int(streamed.mask.sum()) == 1  # one pixel
    np.testing.assert_array_equal(streamed.wavelengths, [450, 500, 550, 600, 650])
    # identity in the input's dtype gives the input file back, byte for byte
    same = restore_file(nn.Identity(), src, tmp_path / "same.hdr", tiles=tiles, dtype="input")
    stored = np.fromfile(Path(same["output"]).with_suffix(".img"), "<u2").reshape(5, 70, 90).transpose(1, 2, 0)
    np.testing.assert_array_equal(stored, counts)


def test_restore_file_maps_bands_per_window_and_super_resolves(tmp_path) -> None:
    from hiralign.bands import match_bands, resample_bands
    from hiralign.io import load, save

    rng = np.random.default_rng(4)
    wl = np.linspace(470, 630, 16)
    cube = Cube(rng.random((24, 20, 16), dtype=np.float32), wavelengths=wl, name="t")
    src = save(cube, tmp_path / "t.npy")
    model_wl = np.arange(400.0, 701.0, 10.0)
    model = nn.Sequential(LocalNet(31), nn.Upsample(scale_factor=4, mode="nearest"))
    tiles = TileConfig(tile=16, overlap=4)
    info = restore_file(model, src, tmp_path / "o.h5", scale=4, tiles=tiles, model_bands=31,
                        model_wavelengths=model_wl, load_options={"wavelengths": wl})
    assert info["resampled"] and info["shape"] == [96, 80, 16]
    mapped, _ = match_bands(load(src, wavelengths=wl), 31, model_wl)
    expected = resample_bands(restore_cube(model, mapped, scale=4, tiles=tiles), wl)
    np.testing.assert_allclose(load(info["output"]).data, expected.data, atol=1e-5)


def test_restore_file_cancelled_writes_nothing(tmp_path, small_cube: Cube) -> None:
    from hiralign.io import save

    src = save(small_cube, tmp_path / "s.hdr")
    progress = CallbackProgress()
    progress.token.cancel()
    with pytest.raises(Cancelled):
        restore_file(nn.Identity(), src, tmp_path / "out" / "r.hdr", tiles=TileConfig(tile=16, overlap=4),
                     progress=progress)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


class BorderNet(nn.Module):
    """Three zero-padded 5×5 box blurs: like a real network, darker within 6 px of any input edge."""

    def __init__(self, bands: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(bands, bands, 5, padding=2, groups=bands, bias=False) for _ in range(3))
        for conv in self.convs:
            nn.init.constant_(conv.weight, 1 / 25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x)
        return x


def test_tile_context_removes_measurable_seams() -> None:
    from hiralign.proxy import seam_excess

    torch.manual_seed(0)
    x = 0.5 + 0.1 * torch.rand(3, 96, 96)
    model = BorderNet(3)
    with torch.no_grad():  # the untiled reference
        whole = model(x[None])[0].numpy().transpose(1, 2, 0)
    bare = TileConfig(tile=32, overlap=8, context=0)
    seamed = restore_tensor(model, x, tiles=bare).numpy().transpose(1, 2, 0)
    before = seam_excess(seamed, bare, reference=whole)
    assert before["rows"]["ratio"] > 1.05 and before["cols"]["ratio"] > 1.05  # a seam: the tile edges show
    padded = TileConfig(tile=32, overlap=8, context=8)
    clean = restore_tensor(model, x, tiles=padded).numpy().transpose(1, 2, 0)
    after = seam_excess(clean, padded, reference=whole)
    assert abs(after["rows"]["ratio"] - 1) < 0.01 and abs(after["cols"]["ratio"] - 1) < 0.01
    np.testing.assert_allclose(clean, whole, atol=1e-5)  # context ≥ the receptive radius: exact
    assert "rows" in seam_excess(clean, padded) and TileConfig().context == 16
    with pytest.raises(ConfigError):
        TileConfig(tile=16, overlap=4, context=-1)
