"""Sample point files: reading labelled points (GPKG, GeoJSON, CSV) and writing a sample design.

Reading (:func:`read_points`) is strict about the file and lenient about single points: a file
that cannot be parsed, lacks the coordinate or reference columns, or holds a coordinate that is
not a finite number is refused with one :class:`~terraseg.errors.DataError` line naming the file
and the row; points without a geometry are skipped and counted. Points in another CRS than the
map's are reprojected (pyproj) and the caller is told (``PointSet.notes``). Files larger than
:data:`MAX_FILE_BYTES` or with more than :data:`MAX_POINTS` points are refused before they fill
the memory.

Writing (:func:`write_points`) gives a GeoPackage (or GeoJSON / CSV) with the fields ``id``,
``map_class`` and an empty ``reference``, and a QGIS ``.qml`` style beside it (:func:`points_qml`):
points coloured by map class, the ``reference`` field a drop-down of the class names, and the
reference label drawn beside each point once set.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from terraseg.errors import DataError

#: Point files above this size are refused (a sample for area estimation has hundreds to thousands of points).
MAX_FILE_BYTES = 256 * 2**20
#: ... and so are files with more points than this.
MAX_POINTS = 1_000_000
VECTOR_SUFFIXES = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON"}
#: ``last_change`` written into GeoPackages: fixed, so the same sample gives the same bytes.
GPKG_DATE = "2000-01-01T00:00:00.000Z"


@dataclass
class PointSet:
    """Points read from a file, in the map's CRS: ``ids``, ``x``, ``y`` and the raw ``labels`` (strings)."""

    ids: list
    x: np.ndarray
    y: np.ndarray
    labels: list[str | None]
    crs_note: str | None = None  # "reprojected N points from ... to ..."
    skipped_no_geometry: int = 0
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def _label(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            value = int(value)
    text = str(value).strip()
    return text or None


def _check_size(path: Path) -> None:
    if not path.exists():
        raise DataError("no such file", path)
    if path.is_dir() and path.suffix.lower() != ".gpkg":
        raise DataError("is a folder, not a point file", path)
    size = path.stat().st_size if path.is_file() else 0
    if size > MAX_FILE_BYTES:
        raise DataError(f"is {size / 2**20:,.0f} MiB; point files of at most {MAX_FILE_BYTES // 2**20} MiB are "
                        "read (a sample has hundreds to thousands of points)", path)


def _number(text, what: str, row: int, path: Path) -> float:
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        raise DataError(f"row {row}: {what} {str(text)[:40]!r} is not a number", path) from None
    if not math.isfinite(value):
        raise DataError(f"row {row}: {what} is {value}, not a finite coordinate", path)
    return value


def _find(columns, wanted: str) -> str | None:
    lower = {str(c).strip().lower(): c for c in columns}
    return lower.get(wanted.strip().lower())


def _read_csv(path: Path, field_name: str, x_field: str, y_field: str) -> PointSet:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError("is not UTF-8 text, so not a CSV file", path) from None
    if "\x00" in text:
        raise DataError("holds binary data (NUL bytes), so it is not a CSV file", path)
    head = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(head.splitlines()[0] if head else "", delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError("is empty: a header row with x, y and the reference column is needed", path) from None
    except csv.Error as exc:
        raise DataError(f"is not valid CSV ({exc})", path) from None
    header = [h.strip() for h in header]
    cols = {}
    for role, name in (("x", x_field), ("y", y_field), ("reference", field_name)):
        col = _find(header, name)
        if col is None:
            raise DataError(f"has no {name!r} column (columns: {', '.join(header) or 'none'}); points need x and y "
                            "in the map's CRS and a reference label", path)
        cols[role] = header.index(col)
    id_col = header.index(_find(header, "id")) if _find(header, "id") is not None else None
    ids, xs, ys, labels = [], [], [], []
    try:
        for row_no, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(header):
                row = row + [""] * (len(header) - len(row))
            xs.append(_number(row[cols["x"]], x_field, row_no, path))
            ys.append(_number(row[cols["y"]], y_field, row_no, path))
            labels.append(_label(row[cols["reference"]]))
            ids.append(row[id_col].strip() if id_col is not None else row_no - 1)
            if len(ids) > MAX_POINTS:
                raise DataError(f"has more than {MAX_POINTS:,} points", path)
    except csv.Error as exc:
        raise DataError(f"is not valid CSV ({exc})", path) from None
    return PointSet(ids, np.array(xs, np.float64), np.array(ys, np.float64), labels)


def _read_vector(path: Path, field_name: str, map_crs) -> PointSet:
    import fiona
    from fiona.errors import FionaError

    from terraseg.errors import first_line

    try:
        layers = fiona.listlayers(str(path))
    except Exception as exc:  # fiona/GDAL raise several types for a file that is not what it claims to be
        raise DataError(f"cannot be read as a {VECTOR_SUFFIXES.get(path.suffix.lower(), 'vector')} file "
                        f"({first_line(exc)})", path) from None
    if not layers:
        raise DataError("holds no layer", path)
    layer = "points" if "points" in layers else layers[0]
    ids, xs, ys, labels, skipped = [], [], [], [], 0
    try:
        with fiona.open(str(path), layer=layer) as src:
            props = list(src.schema.get("properties", {}))
            col = _find(props, field_name)
            if col is None:
                raise DataError(f"has no {field_name!r} field (fields: {', '.join(props) or 'none'})", path)
            id_col = _find(props, "id")
            crs_wkt = src.crs_wkt or None
            for number, feat in enumerate(src, start=1):
                geom = feat.geometry
                if geom is None:
                    skipped += 1
                    continue
                kind = geom.type
                coords = geom.coordinates
                if kind == "MultiPoint" and len(coords) == 1:
                    coords = coords[0]
                elif kind != "Point":
                    raise DataError(f"feature {number} is a {kind}, not a point", path)
                if not coords:
                    skipped += 1
                    continue
                xs.append(_number(coords[0], "x", number, path))
                ys.append(_number(coords[1], "y", number, path))
                labels.append(_label(feat.properties.get(col)))
                ids.append(feat.properties.get(id_col) if id_col is not None else number)
                if len(ids) > MAX_POINTS:
                    raise DataError(f"has more than {MAX_POINTS:,} points", path)
    except DataError:
        raise
    except (FionaError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise DataError(f"cannot be read ({first_line(exc)})", path) from None
    points = PointSet(ids, np.array(xs, np.float64), np.array(ys, np.float64), labels, skipped_no_geometry=skipped)
    if crs_wkt and map_crs is not None and len(points):
        _reproject(points, crs_wkt, map_crs, path)
    return points


def _reproject(points: PointSet, crs_wkt: str, map_crs, path: Path) -> None:
    from pyproj import CRS, Transformer

    src = CRS.from_user_input(crs_wkt)
    dst = CRS.from_user_input(map_crs.to_wkt() if hasattr(map_crs, "to_wkt") else map_crs)
    if src.equals(dst, ignore_axis_order=True):
        return
    t = Transformer.from_crs(src, dst, always_xy=True)
    x, y = t.transform(points.x, points.y, errcheck=False)
    points.x, points.y = np.asarray(x, np.float64), np.asarray(y, np.float64)

    def name(c):
        auth = c.to_authority()
        return ":".join(auth) if auth else c.name

    points.crs_note = (f"{len(points):,} points reprojected from {name(src)} to the map's CRS {name(dst)}")


def read_points(path: str | Path, reference_field: str = "reference", map_crs=None, *, x_field: str = "x",
                y_field: str = "y") -> PointSet:
    """Read labelled points: GeoPackage / GeoJSON (point geometries) or CSV (``x_field`` / ``y_field``
    columns, taken to be in the map's CRS). Labels are returned as stripped strings (``None`` when empty).

    Points of a vector file in another CRS than ``map_crs`` are reprojected into it (see ``crs_note``).
    """
    path = Path(path)
    _check_size(path)
    suffix = path.suffix.lower()
    if suffix in VECTOR_SUFFIXES:
        return _read_vector(path, reference_field, map_crs)
    if suffix in (".csv", ".txt", ".tsv"):
        return _read_csv(path, reference_field, x_field, y_field)
    raise DataError(f"unknown point file type {path.suffix or '(no suffix)'!r}; use .gpkg, .geojson or .csv "
                    "(or a reference raster .tif for a census)", path)


# --------------------------------------------------------------------------------------------------
# writing a sample design


def points_qml(class_names, colors, reference_field: str = "reference") -> str:
    """QGIS style for a sample: categorised by ``map_class``, ``reference`` a drop-down of class names."""
    from xml.sax.saxutils import quoteattr

    cats, symbols, values = [], [], []
    for i, (name, c) in enumerate(zip(class_names, colors)):
        cats.append(f'      <category value={quoteattr(str(name))} symbol="{i}" label={quoteattr(str(name))} '
                    'render="true"/>\n')
        symbols.append(
            f'      <symbol type="marker" name="{i}" alpha="1" clip_to_extent="1" force_rhr="0">\n'
            '        <layer class="SimpleMarker" enabled="1" pass="0" locked="0">\n'
            '          <Option type="Map">\n'
            f'            <Option name="color" type="QString" value="{int(c[0])},{int(c[1])},{int(c[2])},255"/>\n'
            '            <Option name="name" type="QString" value="circle"/>\n'
            '            <Option name="size" type="QString" value="3"/>\n'
            '            <Option name="outline_color" type="QString" value="0,0,0,255"/>\n'
            '            <Option name="outline_width" type="QString" value="0.3"/>\n'
            '          </Option>\n'
            '        </layer>\n'
            '      </symbol>\n')
        values.append(f'              <Option type="Map"><Option name={quoteattr(str(name))} type="QString" '
                      f'value={quoteattr(str(name))}/></Option>\n')
    ref = quoteattr(reference_field)
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            '<qgis version="3.28.0" styleCategories="Symbology|Labeling|Fields|Forms">\n'
            '  <renderer-v2 type="categorizedSymbol" attr="map_class" symbollevels="0" enableorderby="0" '
            'forceraster="0">\n'
            "    <categories>\n" + "".join(cats) + "    </categories>\n"
            "    <symbols>\n" + "".join(symbols) + "    </symbols>\n"
            "  </renderer-v2>\n"
            '  <labeling type="simple">\n'
            '    <settings calloutType="simple">\n'
            f'      <text-style fieldName={ref} fontSize="9" textColor="0,0,0,255" isExpression="0"/>\n'
            '      <text-buffer bufferDraw="1" bufferSize="1" bufferColor="255,255,255,255"/>\n'
            '      <placement placement="1" dist="2"/>\n'
            "    </settings>\n"
            "  </labeling>\n"
            "  <fieldConfiguration>\n"
            f'    <field name={ref} configurationFlags="None">\n'
            '      <editWidget type="ValueMap">\n'
            "        <config>\n"
            '          <Option type="Map">\n'
            '            <Option name="map" type="List">\n' + "".join(values) +
            "            </Option>\n"
            "          </Option>\n"
            "        </config>\n"
            "      </editWidget>\n"
            "    </field>\n"
            "  </fieldConfiguration>\n"
            "  <editable>\n"
            '    <field name="id" editable="0"/>\n'
            '    <field name="map_class" editable="0"/>\n'
            f"    <field name={ref} editable=\"1\"/>\n"
            "  </editable>\n"
            "  <layerGeometryType>0</layerGeometryType>\n"
            "</qgis>\n")


def write_points(path: str | Path, x, y, map_classes: list[str], crs, class_names, colors) -> Path:
    """Write a sample: ``.gpkg`` (layer ``points``), ``.geojson`` or ``.csv`` with ``id`` (1..n),
    ``map_class`` and an empty ``reference``; plus ``<name>.qml`` beside it (not for CSV).

    Both appear atomically.
    """
    from terraseg._io import atomic_path, write_text_atomic
    from terraseg.errors import ConfigError

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["id", "x", "y", "map_class", "reference"])
        for i, (px, py, c) in enumerate(zip(x, y, map_classes), start=1):
            w.writerow([i, repr(float(px)), repr(float(py)), c, ""])
        write_text_atomic(path, buf.getvalue())
        return path
    if suffix not in VECTOR_SUFFIXES:
        raise ConfigError(f"{path}: unknown point file type {path.suffix!r}; use .gpkg, .geojson or .csv")
    import fiona

    schema: dict[str, Any] = {"geometry": "Point",
                              "properties": {"id": "int", "map_class": "str", "reference": "str"}}
    kwargs = {"crs_wkt": crs.to_wkt()} if crs is not None else {}
    kwargs["layer"] = "points" if suffix == ".gpkg" else path.stem
    with atomic_path(path) as tmp:
        tmp.unlink()  # the drivers create the file themselves
        with fiona.Env(OGR_CURRENT_DATE=GPKG_DATE), \
                fiona.open(tmp, "w", driver=VECTOR_SUFFIXES[suffix], schema=schema, **kwargs) as dst:
            batch = []
            for i, (px, py, c) in enumerate(zip(x, y, map_classes), start=1):
                batch.append({"geometry": {"type": "Point", "coordinates": (float(px), float(py))},
                              "properties": {"id": i, "map_class": c, "reference": None}})
                if len(batch) >= 5000:
                    dst.writerecords(batch)
                    batch = []
            if batch:
                dst.writerecords(batch)
    write_text_atomic(path.with_suffix(".qml"), points_qml(class_names, colors))
    return path
