"""A scene whose full probability stack would need far more memory is predicted under a bound."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import rasterio
from predict_helpers import write_pattern_geotiff

HERE = Path(__file__).resolve().parent

SCRIPT = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from predict_helpers import CheapBackend, make_meta, write_pattern_geotiff
from terraseg.predict import predict_file

backend = CheapBackend(make_meta(mean=[127.0] * 3, std=[64.0] * 3, tile_size=256))
# warm up every code path (imports, GDAL, Pillow) on a small scene first
small = write_pattern_geotiff(sys.argv[3] + "/small.tif", 300)
predict_file(backend, small, sys.argv[3] + "/warm")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
predict_file(backend, sys.argv[2], sys.argv[3] + "/out", batch_size=4)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "after": after}))
"""


def test_large_scene_streams_under_rss_bound(tmp_path):
    size, k = 6000, 5
    big = write_pattern_geotiff(tmp_path / "big.tif", size)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(HERE), str(big), str(tmp_path)],
                          capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "TERRASEG_PROGRESS": "0", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rss = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = rss["after"] - rss["before"]
    full_stack = k * size * size * 4  # float32 probabilities of the whole scene: 720 MB
    # the rolling band is K x 256 x 6000 floats (31 MB); everything together stays far below
    print(f"peak RSS growth {growth / 2**20:.0f} MB for a {full_stack / 2**20:.0f} MB probability stack")
    assert growth < full_stack / 5, f"peak RSS grew by {growth / 2**20:.0f} MB"
    with rasterio.open(tmp_path / "out" / "big_classes.tif") as ds:
        assert (ds.width, ds.height) == (size, size)
        assert ds.crs.to_epsg() == 32640
        # spot-check a block far down the scene was written (not left empty)
        block = ds.read(1, window=rasterio.windows.Window(5000, 5800, 200, 200))
    assert block.max() < k and len(set(block.ravel().tolist())) > 1
