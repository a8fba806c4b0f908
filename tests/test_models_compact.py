"""The compact restorer: shapes for any band count, projector initialisation, size."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hiralign.errors import ConfigError, ModelError
from hiralign.models import ARCHS, build_model
from hiralign.models.compact import CompactRestorer, count_parameters

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("bands", [1, 8, 31])
@pytest.mark.parametrize("scale", [1, 4])
def test_maps_any_band_count_to_the_scaled_shape(bands, scale, device):
    model = CompactRestorer(bands, scale=scale, features=16, depth=3).to(device)
    x = torch.rand(2, bands, 12, 16, device=device)
    assert model(x).shape == (2, bands, 12 * scale, 16 * scale)


def test_odd_sizes_are_padded_and_cropped_back():
    model = CompactRestorer(5, features=8, depth=3)
    assert model.unshuffle == 2
    assert model(torch.rand(1, 5, 13, 9)).shape == (1, 5, 13, 9)


def test_starts_as_its_spectral_path_because_the_branch_ends_at_zero():
    model = CompactRestorer(6, features=8, depth=3)
    x = torch.rand(2, 6, 8, 8)
    assert torch.equal(model(x), x)  # identity spectral path, zero residual
    model.init_spectral_projector(np.random.default_rng(0).random((100, 6)), rank=2)
    with torch.no_grad():
        assert torch.allclose(model(x), model.spectral(x))


def test_projector_keeps_spectra_of_its_subspace_and_removes_the_rest():
    rng = np.random.default_rng(0)
    basis = rng.random((2, 10))
    spectra = 0.3 + rng.random((500, 2)) @ basis  # an affine rank-2 set
    model = CompactRestorer(10, features=4, depth=2)
    kept = model.init_spectral_projector(spectra, rank=2)
    assert kept == pytest.approx(1.0, abs=1e-9)
    x = torch.tensor(spectra[:4], dtype=torch.float32).view(4, 10, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model.spectral(x), x, atol=1e-5)
        off = torch.tensor(np.linalg.svd(basis)[2][-1], dtype=torch.float32).view(1, 10, 1, 1)
        moved = model.spectral(x[:1] + off) - model.spectral(x[:1])
    assert moved.abs().max() < 1e-5  # a direction orthogonal to the subspace is removed


def test_projector_rejects_bad_rank_and_too_few_spectra():
    model = CompactRestorer(4, features=4, depth=2)
    with pytest.raises(ConfigError):
        model.init_spectral_projector(np.ones((10, 4)), rank=5)
    with pytest.raises(ConfigError):
        model.init_spectral_projector(np.ones((1, 4)), rank=1)


def test_default_sizes_stay_well_under_a_million_parameters():
    assert count_parameters(build_model("compact", 31)) < 500_000
    assert count_parameters(build_model("compact", 31, scale=4)) < 700_000


def test_registered_and_bad_arguments_are_clear_errors():
    assert ARCHS["compact"] is not None
    with pytest.raises(ConfigError):
        build_model("compact", 31, depth=1)
    with pytest.raises(ModelError):
        build_model("no-such-arch", 31)
    with pytest.raises(ValueError, match="expected"):
        CompactRestorer(4, features=4, depth=2)(torch.rand(1, 5, 8, 8))


def test_one_training_step_moves_every_layer_after_the_first():
    model = CompactRestorer(4, features=8, depth=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.rand(2, 4, 8, 8)
    for _ in range(2):  # step 1 moves the zero tail, step 2 then reaches the body
        opt.zero_grad()
        (model(x) - x.flip(-1)).abs().mean().backward()
        opt.step()
    assert model.tail.weight.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.body.parameters())
