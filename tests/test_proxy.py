import numpy as np
import pytest
import torch
import torch.nn as nn

from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError
from hiralign.progress import CallbackProgress, Cancelled
from hiralign.proxy import TileConfig, restore_cube, restore_tensor, tile_starts


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
