"""Nearest-neighbour search over image patches for the patch generator.

Exact search (FAISS ``IndexFlatL2`` on CPU, chunked matrix products on CUDA) is used while
queries × keys stays small; above that an inverted-file index (``IndexIVFFlat``) trained
once per key set and reused across iterations and variations keeps the finest pyramid
levels affordable on two CPU cores. Measured here (FACTS.md and ``bench_generate.py``):
exact search costs ≈ 10 ns per query-key pair on this CPU almost regardless of patch
dimension, so a 256² level searched exactly at stride 1 (4·10⁹ pairs) would take ≈ 40 s.
"""
from __future__ import annotations

import math

import numpy as np

#: Query × key pairs above which the CPU search switches from exact to IVF.
EXACT_PAIRS_LIMIT = 2.0e7


class PatchIndex:
    """A searchable set of key patches.

    Args:
        keys: (N, D) float32 key patches.
        device: torch device; CUDA uses exact chunked search on the GPU.
        approximate: use an IVF index (CPU only); otherwise exact.
        nprobe: inverted lists visited per query when approximate.
        seed: seed of the IVF k-means training (keeps generation reproducible).
    """

    def __init__(self, keys: np.ndarray, device: torch.device, approximate: bool,  # noqa: F821
                 nprobe: int = 8, seed: int = 0) -> None:
        import faiss

        self.keys = np.ascontiguousarray(keys, dtype=np.float32)
        self.device = device
        self.dim = int(self.keys.shape[1])
        self.quantizer = None
        if device.type == "cuda":
            import torch

            self._keys_t = torch.from_numpy(self.keys).to(device)
            self._norms_t = (self._keys_t * self._keys_t).sum(1)
            self.index = None
            return
        if approximate:
            n = len(self.keys)
            nlist = int(min(max(16, 2 * math.sqrt(n)), n // 39))
            self.quantizer = faiss.IndexFlatL2(self.dim)
            self.index = faiss.IndexIVFFlat(self.quantizer, self.dim, nlist)
            self.index.cp.seed = int(seed)
            self.index.cp.niter = 8
            # k-means on a subsample: 40 points per list train as well as all of them here.
            rng = np.random.default_rng(seed)
            take = min(n, 40 * nlist)
            sample = self.keys[rng.choice(n, take, replace=False)] if take < n else self.keys
            self.index.train(sample)
            self.index.add(self.keys)
            self.index.nprobe = int(min(nprobe, nlist))
        else:
            self.index = faiss.IndexFlatL2(self.dim)
            self.index.add(self.keys)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest keys of each query.

        Args:
            queries: (M, D) float32.
            k: neighbours per query.

        Returns:
            ``(distances, indices)``, both (M, k): squared L2 distances (float32) and key
            indices (int64, -1 where an approximate search found fewer than ``k``).
        """
        k = int(min(k, len(self.keys)))
        if self.index is None:
            return _torch_search(queries, self._keys_t, self._norms_t, k)
        dist, idx = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return dist, idx

    def same_cells(self, points: np.ndarray) -> PatchIndex:
        """An index over ``points`` sharing this index's coarse quantizer (no training).

        Used for the completeness term, which searches the queries for each key: the
        queries resemble the keys, so the keys' clustering serves them too.
        """
        import faiss

        other = PatchIndex.__new__(PatchIndex)
        other.keys = np.ascontiguousarray(points, dtype=np.float32)
        other.device = self.device
        other.dim = self.dim
        other.quantizer = self.quantizer
        if self.index is None:
            import torch

            other._keys_t = torch.from_numpy(other.keys).to(self.device)
            other._norms_t = (other._keys_t * other._keys_t).sum(1)
            other.index = None
        elif self.quantizer is None:
            other.index = faiss.IndexFlatL2(self.dim)
            other.index.add(other.keys)
        else:
            other.index = faiss.IndexIVFFlat(self.quantizer, self.dim, self.index.nlist)
            other.index.is_trained = True
            other.index.add(other.keys)
            other.index.nprobe = self.index.nprobe
        return other


def use_approximate(n_queries: int, n_keys: int, device: torch.device) -> bool:  # noqa: F821
    """Whether a search of this size should use the IVF index (CPU only)."""
    return device.type != "cuda" and float(n_queries) * float(n_keys) > EXACT_PAIRS_LIMIT and n_keys >= 39 * 16


def _torch_search(queries: np.ndarray, keys_t: torch.Tensor, norms_t: torch.Tensor,  # noqa: F821
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)).to(keys_t.device)
    q_norms = (q * q).sum(1, keepdim=True)
    # Chunks keep the (chunk, N) distance block within a few hundred MB.
    chunk = max(1, int(2.5e7 // max(1, keys_t.shape[0])))
    dists, idxs = [], []
    for start in range(0, q.shape[0], chunk):
        block = q[start:start + chunk]
        d = norms_t[None, :] - 2.0 * block @ keys_t.T + q_norms[start:start + chunk]
        v, i = torch.topk(d, k, dim=1, largest=False)
        dists.append(v.clamp_min_(0))
        idxs.append(i)
    return torch.cat(dists).cpu().numpy(), torch.cat(idxs).cpu().numpy().astype(np.int64)
