"""Make the docs' picture of the built-in model (docs/images/builtin-scene-overlay.jpg) from a real run.

    python packaging/builtin_figure.py docs/images/builtin-scene-overlay.jpg

Runs the installed ``terraseg`` command exactly as the tutorial does (``models sample-scene``, then
``predict dubai-landcover``) and lays out three panels: the shipped scene, its labelled mask and the
prediction overlay terraseg wrote (with its legend). The caption's mIoU is computed here with
scikit-learn from the mask's colours as the data set's README lists them, not by terraseg.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# the Dubai data set README's mask colours of the 5 land-cover classes; Unlabeled (#9B9B9B) is ignored
README_COLOURS = {(60, 16, 152): 0, (132, 41, 246): 1, (110, 193, 228): 2, (254, 221, 58): 3, (226, 169, 41): 4}
PANEL = 480
CAPTION = 34


def terraseg(*args: str, cwd: Path) -> None:
    exe = shutil.which("terraseg") or str(Path(sys.executable).parent / "terraseg")
    subprocess.run([exe, *args], cwd=cwd, check=True, env={"TERRASEG_PROGRESS": "0", "PATH": str(Path(exe).parent)})


def reference_classes(mask_png: Path) -> np.ndarray:
    rgb = np.asarray(Image.open(mask_png).convert("RGB")).astype(np.int32)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    out = np.full(code.shape, -1, np.int64)
    for (r, g, b), index in README_COLOURS.items():
        out[code == ((r << 16) | (g << 8) | b)] = index
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    args = p.parse_args()
    from sklearn.metrics import jaccard_score

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        terraseg("models", "sample-scene", "--out", "s", cwd=work)
        terraseg("predict", "dubai-landcover", "s/dubai-scene.jpg", "--out", "m", cwd=work)
        scene = Image.open(work / "s" / "dubai-scene.jpg").convert("RGB")
        mask = Image.open(work / "s" / "dubai-scene-mask.png").convert("RGB")
        overlay = Image.open(work / "m" / "dubai-scene_overlay.png").convert("RGB")
        truth = reference_classes(work / "s" / "dubai-scene-mask.png")
        predicted = np.asarray(Image.open(work / "m" / "dubai-scene_classes.png")).astype(np.int64)
    keep = truth >= 0
    miou = jaccard_score(truth[keep], predicted[keep], labels=list(range(5)), average="macro")
    accuracy = float((truth[keep] == predicted[keep]).mean())

    scale = PANEL / scene.height
    panels = [scene.resize((PANEL, PANEL), Image.Resampling.LANCZOS),
              mask.resize((PANEL, PANEL), Image.Resampling.NEAREST),
              overlay.resize((round(overlay.width * scale), PANEL), Image.Resampling.LANCZOS)]
    titles = ["Dubai scene (CC0, never seen in training)", "labelled mask",
              f"terraseg predict dubai-landcover: mIoU {100 * miou:.1f} %, pixel accuracy {100 * accuracy:.1f} %"]
    gap = 8
    width = sum(im.width for im in panels) + gap * (len(panels) - 1)
    sheet = Image.new("RGB", (width, PANEL + CAPTION), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=15)
    x = 0
    for im, title in zip(panels, titles):
        sheet.paste(im, (x, CAPTION))
        draw.text((x + 4, 8), title, fill="black", font=font)
        x += im.width + gap
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=85, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} KB): scene mIoU {miou:.4f}, pixel accuracy "
          f"{accuracy:.4f} over {int(keep.sum()):,} labelled pixels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
