#!/usr/bin/env bash
# Build the standalone terraseg desktop app (one folder, ONNX Runtime inference, no torch) and
# smoke-test it headlessly.
#
#   bash packaging/build_app.sh            # build + smoke test + size
#   RASTERIO=1 bash packaging/build_app.sh # also bundle rasterio (GeoTIFF georeferencing, polygons)
#
# Steps: (1) a separate venv packaging/.venv-app with only what the ONNX app needs
# (PySide6-Essentials, onnxruntime, numpy, Pillow, pydantic, PyInstaller) and terraseg installed with
# --no-deps; (2) a tiny random model exported to ONNX and a sample image, made with the dev venv
# (.venv, which has torch) by `terraseg export`; (3) PyInstaller with packaging/terraseg-app.spec
# into packaging/dist/terraseg-app; (4) the app runs `--smoke-test IMAGE MODEL.onnx` offscreen
# (opens the window, predicts, exits 0) on the 384 px sample and on a 2048 x 2048 scene (hundreds of
# progress signals: PySide6 6.12.0 aborted there, issue 16) and the build is checked for torch;
# (5) the size is printed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
APPVENV="${APPVENV:-$HERE/.venv-app}"
DEVPY="${DEVPY:-$ROOT/.venv/bin/python}"
PYTHON="${PYTHON:-python3}"
WORK="$HERE/build"
DIST="$HERE/dist"
SMOKE="$WORK/smoke"
RASTERIO="${RASTERIO:-0}"
cd "$ROOT"

echo "== 1/5 app venv: $APPVENV"
if [ ! -x "$APPVENV/bin/python" ]; then
    "$PYTHON" -m venv "$APPVENV"
    "$APPVENV/bin/pip" install -q --upgrade pip
fi
"$APPVENV/bin/pip" install -q "PySide6-Essentials>=6.6,<6.12" "onnxruntime>=1.18" "numpy>=1.24" "pillow>=10" "pydantic>=2" \
    "pyinstaller>=6.5"
if [ "$RASTERIO" = "1" ]; then
    "$APPVENV/bin/pip" install -q "rasterio>=1.3"
else
    "$APPVENV/bin/pip" uninstall -q -y rasterio affine >/dev/null 2>&1 || true
fi
mkdir -p "$WORK"
"$APPVENV/bin/pip" install -q --no-deps --force-reinstall "$ROOT" >"$WORK/pip-terraseg.log" 2>&1 \
    || { cat "$WORK/pip-terraseg.log" >&2; exit 1; }
if "$APPVENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    echo "error: torch is installed in $APPVENV; the app venv must not have it" >&2
    exit 1
fi

echo "== 2/5 smoke-test model and image (dev venv: $DEVPY)"
mkdir -p "$SMOKE"
if [ ! -f "$SMOKE/model.onnx" ] || [ ! -f "$SMOKE/image.png" ] || [ ! -f "$SMOKE/scene-2048.png" ]; then
    "$DEVPY" - "$SMOKE" <<'PY'
import shutil, sys
from pathlib import Path

import torch

from terraseg import models
from terraseg.bundle import BundleMeta, save_bundle
from terraseg.data.sample import generate_sample
from terraseg.data.spec import load_spec

out = Path(sys.argv[1])
spec = load_spec(generate_sample(out / "sample", n_images=1, size=384, seed=3))
torch.manual_seed(0)
options = {"base_channels": 8, "depth": 3}
model = models.build("unet", in_channels=spec.bands, num_classes=spec.num_classes, **options)
meta = BundleMeta(architecture="unet", options=options, in_channels=spec.bands, num_classes=spec.num_classes,
                  classes=list(spec.class_names), colors=[list(c) for c in spec.colors],
                  ignore_index=spec.ignore_index, mean=[127.5] * spec.bands, std=[64.0] * spec.bands,
                  tile_size=128)
save_bundle(out / "bundle", model, meta)
shutil.copyfile(spec.items()[0].image, out / "image.png")
# a 2048 x 2048 scene of smooth fields: ~1000 tiles, ~250 progress signals in one run
import numpy as np
from PIL import Image
coarse = np.random.default_rng(7).integers(0, 256, (32, 32, 3), dtype=np.uint8)
Image.fromarray(coarse).resize((2048, 2048), Image.Resampling.BILINEAR).save(out / "scene-2048.png")
PY
    "$DEVPY" -m terraseg export "$SMOKE/bundle" --onnx "$SMOKE/model.onnx"
fi

echo "== 3/5 PyInstaller"
rm -rf "$DIST/terraseg-app"
TERRASEG_APP_RASTERIO="$RASTERIO" "$APPVENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK/pyinstaller" "$HERE/terraseg-app.spec"
APP="$DIST/terraseg-app/terraseg-app"
# The Python runtime (libpython, lib-dynload) from a source-built interpreter carries debug symbols:
# strip those only (the wheels' own libraries are already stripped, and stripping auditwheel-patched
# libraries such as numpy's OpenBLAS breaks them).
if command -v strip >/dev/null; then
    { find "$DIST/terraseg-app/_internal" -maxdepth 1 -name 'libpython*.so*'
      find "$DIST/terraseg-app/_internal" -path '*/lib-dynload/*.so'; } | xargs -r strip --strip-unneeded
fi

echo "== 4/5 smoke test (headless)"
if find "$DIST/terraseg-app" -iname '*torch*' | grep -q .; then
    echo "error: torch files found in the bundle" >&2
    exit 1
fi
start=$(date +%s.%N)
env -u DISPLAY -u WAYLAND_DISPLAY QT_QPA_PLATFORM=offscreen "$APP" --smoke-test "$SMOKE/image.png" \
    "$SMOKE/model.onnx" --screenshot "$SMOKE/app-window.png" | tee "$SMOKE/smoke.log"
end=$(date +%s.%N)
grep -q "torch imported: False" "$SMOKE/smoke.log"
echo "smoke test passed in $(echo "$end - $start" | bc) s (including start-up)"
# the big scene: the app must predict it and exit 0 (an abort at exit gives 134 and stops the build)
env -u DISPLAY -u WAYLAND_DISPLAY QT_QPA_PLATFORM=offscreen "$APP" --smoke-test "$SMOKE/scene-2048.png" \
    "$SMOKE/model.onnx" | tee "$SMOKE/smoke-2048.log"
grep -q "smoke test: predicted 2048x2048 px" "$SMOKE/smoke-2048.log"
echo "smoke test on a 2048 x 2048 scene passed (exit 0)"

echo "== 5/5 size"
bytes=$(du -sb "$DIST/terraseg-app" | cut -f1)
files=$(find "$DIST/terraseg-app" -type f | wc -l)
echo "app folder: $DIST/terraseg-app"
echo "size on disk: $((bytes / 1000000)) MB ($((bytes / 1048576)) MiB) in $files files (target < 250 MB)"
du -sh "$DIST/terraseg-app"/_internal/* 2>/dev/null | sort -h | tail -8
