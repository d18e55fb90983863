"""`terraseg predict` through the ONNX backend: no torch import, same class map as torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import rasterio
from predict_helpers import write_geotiff

CODE = r"""
import sys
from terraseg.cli import main
try:
    main(["predict", sys.argv[1], sys.argv[2], "--out", sys.argv[3], "--vector", "geojson"])
except SystemExit as exc:
    code = exc.code or 0
else:
    code = 0
print("torch" in sys.modules, code)
"""


def test_onnx_backend_cli_without_torch_matches_torch(tmp_path, tiny_bundle):
    from terraseg.export import export_onnx
    from terraseg.predict import predict_file

    onnx_path = export_onnx(tiny_bundle, tmp_path / "model.onnx", exporter="torchscript")
    image = (np.random.default_rng(0).random((130, 150, 3)) * 255).astype(np.uint8)
    scene = write_geotiff(tmp_path / "scene.tif", image)
    proc = subprocess.run([sys.executable, "-c", CODE, str(onnx_path), str(scene), str(tmp_path / "onnx")],
                          capture_output=True, text=True, timeout=120, env={"TERRASEG_PROGRESS": "0",
                                                                            "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    torch_imported, code = proc.stdout.split()[-2:]
    assert torch_imported == "False" and code == "0"
    torch_out = predict_file(tiny_bundle, scene, tmp_path / "torch", overlay=False)
    with rasterio.open(tmp_path / "onnx" / "scene_classes.tif") as a, rasterio.open(torch_out["classes"]) as b:
        assert a.crs == b.crs and a.transform == b.transform
        agree = (a.read(1) == b.read(1)).mean()
    assert agree >= 0.999
    assert (tmp_path / "onnx" / "scene_polygons.geojson").exists()
