"""Seed retrieval with FAISS (Eq. 10): the K_s proxy descriptors nearest each guide one.

The proxy descriptors form the database; guide descriptors are computed and searched
one tile of rows at a time so only one tile of queries is ever in memory. A GPU index is
used when the warp runs on CUDA and the installed FAISS has GPU support; HNSW has no
GPU form and always searches on the CPU.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hiralign.warp.config import WarpConfig

log = logging.getLogger(__name__)

#: Below this many proxy pixels an exact search is as fast as IVF/HNSW and is used instead.
SMALL_INDEX_PIXELS = 128 * 128


@dataclass
class SeedIndex:
    """A searchable proxy-descriptor database.

    Attributes:
        index: the FAISS index (CPU or GPU).
        kind: what was built: "exact", "ivf" or "hnsw".
        on_gpu: whether searches run on a GPU.
        projection: optional PCA (faiss.PCAMatrix) applied to queries before searching.
        details: numbers worth reporting (nlist, nprobe, dims…).
    """

    index: Any
    kind: str
    on_gpu: bool
    projection: Any = None
    details: dict | None = None

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Indices (n, k) int64 of the k nearest database rows of each query (−1: none)."""
        x = np.ascontiguousarray(queries, dtype=np.float32)
        if self.projection is not None:
            x = self.projection.apply(x)
        _, ids = self.index.search(x, k)
        return ids


def faiss_threads(threads: int) -> None:
    """Use ``threads`` OpenMP threads in FAISS (its default grabs every core)."""
    import faiss

    faiss.omp_set_num_threads(max(1, int(threads)))


def gpu_available() -> bool:
    """Whether the installed FAISS can place indexes on a CUDA GPU."""
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def default_nlist(n: int) -> int:
    """IVF cells ≈ 4·√N rounded to a power of two (FACTS.md), at least 16."""
    return int(max(16, 2 ** round(math.log2(4.0 * math.sqrt(max(n, 1))))))


def build_index(database: np.ndarray, config: WarpConfig, use_gpu: bool = False,
                gpu_id: int = 0) -> SeedIndex:
    """Build the FAISS index over the proxy descriptors.

    Args:
        database: (N, D) float32 proxy descriptors (row-major pixel order).
        config: index kind and its parameters.
        use_gpu: move the index to GPU ``gpu_id`` when FAISS supports it.

    Returns:
        The :class:`SeedIndex`; ``kind`` records what was really built (an IVF/HNSW
        request on fewer than :data:`SMALL_INDEX_PIXELS` pixels builds an exact index).
    """
    import faiss

    n = database.shape[0]
    rng = np.random.default_rng(config.seed)
    projection = None
    data = np.ascontiguousarray(database, dtype=np.float32)
    if 0 < config.retrieval_dims < data.shape[1]:
        sample = data[_subsample(n, max(20000, 50 * config.retrieval_dims), rng)]
        projection = faiss.PCAMatrix(data.shape[1], config.retrieval_dims)
        projection.train(sample)
        data = projection.apply(data)
    dim = data.shape[1]
    kind = config.index if n >= SMALL_INDEX_PIXELS else "exact"
    details: dict[str, Any] = {"dims": dim, "database": n}
    if kind == "exact":
        index = faiss.IndexFlatL2(dim)
    elif kind == "ivf":
        nlist = config.ivf_nlist or default_nlist(n)
        nlist = min(nlist, max(1, n // 8))
        quantizer = faiss.IndexFlatL2(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_L2)
        train = data[_subsample(n, nlist * config.ivf_train_per_list, rng)]
        index.cp.min_points_per_centroid = 1  # a small subsample is deliberate: no warning
        index.cp.niter = 10  # coarse cells need not be converged; 25 (default) costs 2.5× more
        index.train(train)
        index.nprobe = min(config.ivf_nprobe, nlist)
        details.update(nlist=nlist, nprobe=index.nprobe, train_points=int(train.shape[0]))
    else:
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m)
        index.hnsw.efSearch = max(config.hnsw_ef_search, config.seeds)
        details.update(m=config.hnsw_m, ef_search=index.hnsw.efSearch)
    on_gpu = False
    if use_gpu and kind != "hnsw" and gpu_available():
        resources = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(resources, gpu_id, index)
        index.referenced_resources = resources  # keep the resources alive with the index
        on_gpu = True
    index.add(data)
    return SeedIndex(index=index, kind=kind, on_gpu=on_gpu, projection=projection, details=details)


def search_seeds(index: SeedIndex, queries: np.ndarray, k: int) -> np.ndarray:
    """K_s seeds (n, K_s) int64 of a tile of guide descriptors (Eq. 10).

    A query with fewer than K_s results (an IVF probe of sparse cells) repeats its
    nearest seed in the missing slots, which only duplicates a candidate.
    """
    ids = index.search(queries, k)
    missing = ids < 0
    if missing.any():
        nearest = np.where(missing[:, :1], 0, ids[:, :1])
        ids = np.where(missing, nearest, ids)
    return ids


def _subsample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    if size >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))
