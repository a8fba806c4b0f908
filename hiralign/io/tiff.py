"""TIFF and GeoTIFF cubes (tifffile).

Reading: a series whose last axis is samples (``...YXS``, e.g. a 4-channel image) is
already (H, W, B); any other 3-D series (pages ``IYX``/``QYX``/``CYX``/``ZYX``, or a
GeoTIFF's planar samples ``SYX``) has the bands first and is moved to last. A 2-D TIFF
is a single image, not a cube. Band metadata comes from the JSON description tifffile
writes (:func:`write_tiff`) or from GDAL's metadata tag (42112): per-sample
``wavelength`` + ``wavelength_units`` items (what GDAL's ENVI driver writes) or the
IMAGERY domain's ``CENTRAL_WAVELENGTH_UM`` / ``FWHM_UM``; ``GDAL_NODATA`` (42113)
becomes the ignore value (the cube's mask). GeoTIFF georeferencing tags (model
tie points, pixel scale, transformation, geo keys) are kept in ``metadata["geotiff_tags"]``.

Writing: one page per band (``axes = "CYX"``) with the band metadata in the JSON
description; a cube read from a GeoTIFF is written back as a GeoTIFF (one planar page,
its georeferencing tags, GDAL metadata and nodata), so GIS tools still place it.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from hiralign.atomic import atomic_path
from hiralign.cube import Cube
from hiralign.errors import InputError
from hiralign.io.common import RawCube, good_band_list
from hiralign.io.variables import band_info

#: GeoTIFF georeferencing tags kept through a save: ModelPixelScale, ModelTiepoint,
#: ModelTransformation, GeoKeyDirectory, GeoDoubleParams, GeoAsciiParams.
GEO_TAGS = (33550, 33922, 34264, 34735, 34736, 34737)
GDAL_METADATA, GDAL_NODATA = 42112, 42113


def read_tiff(path: Path) -> RawCube:
    """Read a multi-page, multi-sample or GeoTIFF as an (H, W, B) cube in its own dtype."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise InputError(f"{path}: the TIFF holds no image")
        series = tif.series[0]
        axes = series.axes
        data = series.asarray()
        described: dict[str, Any] = {}
        for meta in tif.shaped_metadata or ():
            described.update(meta)
        page = tif.pages[0]
        geo = {code: _tag_tuple(page.tags[code]) for code in GEO_TAGS if code in page.tags}
        gdal_xml = page.tags[GDAL_METADATA].value if GDAL_METADATA in page.tags else None
        nodata = page.tags[GDAL_NODATA].value if GDAL_NODATA in page.tags else None
    squeeze = tuple(i for i, n in enumerate(data.shape) if n == 1 and data.ndim > 3)
    if squeeze:
        data = data.squeeze(axis=squeeze)
        axes = "".join(a for i, a in enumerate(axes) if i not in squeeze)
    if data.ndim == 2:
        raise InputError(f"{path}: a single 2-D image of shape {data.shape}, not a cube; "
                         "a cube TIFF has one page per band")
    if data.ndim != 3:
        raise InputError(f"{path}: TIFF series of shape {data.shape} (axes {axes}); expected 3-D")
    if not axes.endswith("S"):
        data = np.moveaxis(data, 0, 2)
    bands = data.shape[2]
    extra = {k: v for k, v in described.items() if k in ("wavelengths", "fwhm", "bbl", "wavelength_units",
                                                         "reflectance_scale_factor", "data_ignore_value")}
    metadata: dict[str, Any] = {"axes": axes}
    if isinstance(described.get("name"), str):
        metadata["stored_name"] = described["name"]
    if gdal_xml:
        gdal = parse_gdal_metadata(str(gdal_xml), bands)
        for key in ("wavelengths", "wavelength_units", "fwhm"):
            if key in gdal and key not in extra:
                extra[key] = gdal[key]
        if gdal.get("band_names"):
            metadata["band_names"] = gdal["band_names"]
    if nodata is not None and "data_ignore_value" not in extra:
        try:
            extra["data_ignore_value"] = float(str(nodata).strip("\x00 "))
        except ValueError:
            pass
    if geo:
        metadata["geotiff_tags"] = geo
        metadata["format_detail"] = "GeoTIFF"
    info = band_info([extra], bands)
    return RawCube(data=data, format="GeoTIFF" if geo else "TIFF", metadata=metadata, **info)


def _tag_tuple(tag: Any) -> dict[str, Any]:
    """A TIFF tag as JSON-safe {dtype code, count, value} for writing it back."""
    value = tag.value
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    elif isinstance(value, (tuple, list, np.ndarray)):
        value = [v.item() if isinstance(v, np.generic) else v for v in value]
    dtype = tag.dtype if isinstance(tag.dtype, int) else int(getattr(tag.dtype, "value", tag.dtype))
    return {"dtype": dtype, "count": int(tag.count), "value": value}


def parse_gdal_metadata(text: str, bands: int) -> dict[str, Any]:
    """Wavelengths (with unit), fwhm and band names from a GDAL_METADATA XML string."""
    try:
        root = ET.fromstring(text.strip("\x00 "))
    except ET.ParseError:
        return {}
    per_band: dict[str, dict[int, str]] = {}
    for item in root.iter("Item"):
        sample = item.get("sample")
        if sample is None or not sample.isdigit():
            continue
        name = (item.get("name") or "").lower()
        if item.get("role") == "description":
            name = "description"
        per_band.setdefault(name, {})[int(sample)] = (item.text or "").strip()

    def vector(name: str) -> list[float] | None:
        values = per_band.get(name, {})
        if sorted(values) != list(range(bands)):
            return None
        try:
            return [float(values[i]) for i in range(bands)]
        except ValueError:
            return None

    out: dict[str, Any] = {}
    if (wl := vector("wavelength")) is not None:
        out["wavelengths"] = wl
        units = per_band.get("wavelength_units", {})
        if units:
            out["wavelength_units"] = next(iter(units.values()))
        if (fw := vector("fwhm")) is not None:
            out["fwhm"] = fw
    elif (wl := vector("central_wavelength_um")) is not None:
        out["wavelengths"], out["wavelength_units"] = wl, "um"
        if (fw := vector("fwhm_um")) is not None:
            out["fwhm"] = fw  # band_info converts it with the wavelengths' unit
    names = per_band.get("description", {})
    if sorted(names) == list(range(bands)):
        out["band_names"] = [names[i] for i in range(bands)]
    return out


def gdal_metadata_xml(cube: Cube) -> str | None:
    """GDAL_METADATA XML with per-band wavelength (nm), fwhm and the IMAGERY µm items."""
    if cube.wavelengths is None:
        return None
    items = []
    names = cube.metadata.get("band_names")
    for i, wl in enumerate(cube.wavelengths):
        items.append(f'<Item name="wavelength" sample="{i}">{float(wl)!r}</Item>')
        items.append(f'<Item name="wavelength_units" sample="{i}">nm</Item>')
        items.append(f'<Item name="CENTRAL_WAVELENGTH_UM" sample="{i}" domain="IMAGERY">{float(wl) / 1000.0!r}</Item>')
        if cube.fwhm is not None:
            items.append(f'<Item name="fwhm" sample="{i}">{float(cube.fwhm[i])!r}</Item>')
            items.append(f'<Item name="FWHM_UM" sample="{i}" domain="IMAGERY">{float(cube.fwhm[i]) / 1000.0!r}</Item>')
        if isinstance(names, list) and len(names) == cube.n_bands:
            items.append(f'<Item name="DESCRIPTION" sample="{i}" role="description">{_xml_text(names[i])}</Item>')
    return "<GDALMetadata>" + "".join(items) + "</GDALMetadata>"


def _xml_text(value: Any) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_tiff(cube: Cube, path: Path, compress: bool = False, dtype: str | None = None) -> Path:
    """Write ``cube`` as a TIFF (one page per band) or, when it came from one, a GeoTIFF.

    ``compress`` uses lossless zlib (deflate); ``dtype`` as for :func:`hiralign.io.save`.
    """
    import tifffile

    from hiralign.io.arrays import stored_data

    data, extra = stored_data(cube, path, dtype)
    planes = np.ascontiguousarray(data.transpose(2, 0, 1))
    described: dict[str, Any] = {"axes": "CYX", "name": cube.name}
    if cube.wavelengths is not None:
        described["wavelengths"] = cube.wavelengths.tolist()
        described["wavelength_units"] = "nm"
    if cube.fwhm is not None:
        described["fwhm"] = cube.fwhm.tolist()
    if cube.bad_bands:
        described["bbl"] = good_band_list(cube).tolist()
    for key, value in extra.items():
        described[key.replace(" ", "_")] = value
    geo = cube.metadata.get("geotiff_tags")
    with atomic_path(path) as tmp:
        if not geo:
            tifffile.imwrite(tmp, planes, photometric="minisblack", metadata=described,
                             compression="zlib" if compress else None)
            return path
        tags = [(int(code), t["dtype"], t["count"], tuple(t["value"]) if isinstance(t["value"], list) else t["value"],
                 True) for code, t in sorted(geo.items(), key=lambda kv: int(kv[0]))]
        xml = gdal_metadata_xml(cube)
        if xml:
            tags.append((GDAL_METADATA, "s", 0, xml, True))
        if "data ignore value" in extra:
            tags.append((GDAL_NODATA, "s", 0, f"{extra['data ignore value']:g}", True))
        tifffile.imwrite(tmp, planes, photometric="minisblack", planarconfig="separate", metadata=None,
                         extratags=tags, compression="zlib" if compress else None)
    return path
