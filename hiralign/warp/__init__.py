"""Stage 2b: warp-based spectral transfer (paper Sec. III-B 2, Eqs. 9–26, Fig. 3).

``warp(proxy, guide_rgb)`` estimates a sparse row-stochastic transport T from RGB
alignment of the proxy's pseudo-RGB to a guide RGB and applies the same T to every band
of the proxy, so the synthesized HSI has the guide's layout and only proxy spectra.
"""
from hiralign.warp.config import WarpConfig
from hiralign.warp.core import warp
from hiralign.warp.result import WarpResult

__all__ = ["WarpConfig", "WarpResult", "warp"]
