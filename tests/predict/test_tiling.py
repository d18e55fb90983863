from __future__ import annotations

import numpy as np
import pytest

from terraseg.errors import ConfigError
from terraseg.predict.blend import window_2d
from terraseg.predict.api import predict_array
from terraseg.predict.engine import infer
from terraseg.predict.tiler import TileGrid, axis_starts, fitted_tile_size, resolve_overlap, tile_windows

from predict_helpers import PixelBackend, make_meta, position_image

SIZES = [(1, 1), (5, 70), (31, 32), (32, 32), (33, 32), (64, 64), (96, 128), (97, 131), (200, 45), (257, 250)]


@pytest.mark.parametrize("h,w", SIZES)
@pytest.mark.parametrize("tile,overlap", [(32, 8), (32, 0), (48, 47), (64, 16)])
def test_windows_cover_every_pixel_and_stay_inside(h, w, tile, overlap):
    grid = TileGrid(h, w, tile, overlap)
    count = np.zeros((h, w), np.int32)
    for win in grid.windows():
        assert win.col_off >= 0 and win.row_off >= 0
        assert win.col_off + win.width <= w and win.row_off + win.height <= h
        # every window has the full tile size unless the scene is smaller than a tile
        assert win.height == min(tile, h) and win.width == min(tile, w)
        count[win.row_off:win.row_off + win.height, win.col_off:win.col_off + win.width] += 1
    assert count.min() >= 1
    # the output strips partition the rows: every output pixel is written exactly once
    written = np.zeros(h, np.int32)
    for top, bottom in grid.output_strips():
        written[top:bottom] += 1
    assert (written == 1).all()
    assert len(grid.output_strips()) == len(grid.row_starts)
    # consecutive tiles overlap by at least the requested amount (edge tiles shifted inward)
    starts = grid.row_starts
    for a, b in zip(starts, starts[1:]):
        assert 0 < b - a <= tile - overlap


@pytest.mark.parametrize("h,w", [(2448, 2448), (4096, 4096), (3000, 1000), (300, 500), (1025, 1025), (20, 20),
                                 (1024, 1024), (5000, 70)])
@pytest.mark.parametrize("tile,overlap", [(1024, 16), (512, 16), (256, 64), (500, 0)])
def test_fitted_tile_is_the_smallest_multiple_of_32_with_no_more_tiles(h, w, tile, overlap):
    """Checked by brute force over every candidate size, not by the formula under test."""
    def per_axis(size):
        return len(axis_starts(h, size, size - overlap)), len(axis_starts(w, size, size - overlap))

    fitted = fitted_tile_size(h, w, tile, overlap)
    rows, cols = per_axis(tile)
    candidates = [s for s in range(32, tile + 1, 32) if s > overlap and per_axis(s)[0] <= rows
                  and per_axis(s)[1] <= cols]
    assert fitted == (candidates[0] if candidates else tile)
    grid = TileGrid.for_scene(h, w, tile, overlap)
    assert grid.tile_size == fitted and len(grid) <= rows * cols
    # the pixels the network sees never grow (windows padded up to the tile size)
    assert len(grid) * fitted ** 2 <= len(TileGrid(h, w, tile, overlap)) * tile ** 2
    assert TileGrid.for_scene(h, w, tile, overlap, fit=False).tile_size == tile


def test_fitted_grid_of_a_dubai_sized_scene():
    # 2448 px at 1024/16: 3 tiles per axis either way, 832 px instead of 1024 px (6.2 MP, not 9.4 MP)
    assert fitted_tile_size(2448, 2448, 1024, 16) == 832
    assert TileGrid.for_scene(2448, 2448, 1024, 16).row_starts == [0, 816, 1616]


def test_a_backend_running_two_tiles_at_once_gets_no_tile_run_alone():
    """On 2 cores the ONNX backend runs 2 tiles side by side and a leftover tile alone on both cores:
    1224 px at 512/16 fits 3 tiles of 448 px per row (one alone in every batch), so the grid takes 4
    of 320 px, every batch even, and the blended result is still the untiled one."""
    meta = make_meta(bands=3, num_classes=4)
    image = position_image(1224, 1224)
    one = PixelBackend(meta)
    predict_array(one, image, tile_size=512, overlap=16, batch_size=4)
    assert {s[0] for s in one.shapes} == {3} and {s[2:] for s in one.shapes} == {(448, 448)}
    two = PixelBackend(meta)
    two.tiles_at_once = 2
    got = predict_array(two, image, tile_size=512, overlap=16, batch_size=4, return_probabilities=True)
    assert {s[0] for s in two.shapes} == {4} and {s[2:] for s in two.shapes} == {(320, 320)}
    assert len(two.shapes) == 4  # 4 tile rows of 4
    whole = predict_array(PixelBackend(meta), image, tile_size=1248, overlap=16, return_probabilities=True)
    np.testing.assert_allclose(got.probabilities, whole.probabilities, atol=1e-5)


@pytest.mark.parametrize("h,w", [(2448, 2448), (4096, 4096), (900, 900), (10000, 10000), (3000, 700)])
def test_tiles_side_by_side_fill_every_batch_without_much_more_network_pixels(h, w):
    """Whatever tile is chosen for 2 tiles at once: at most one more tile per row than the fitted grid,
    a tile never above the asked size, and no more network pixels than running the fitted grid's
    leftover tiles at 1.5x their cost (counted here tile by tile, batch by batch)."""
    def weighted_pixels(grid):
        cols, total = len(grid.col_starts), 0.0
        for b0 in range(0, cols, 4):
            batch = min(4, cols - b0)
            total += sum(1.0 if j < batch - batch % 2 else 1.5 for j in range(batch))
        return total * len(grid.row_starts) * grid.tile_size ** 2

    fitted = TileGrid.for_scene(h, w, 1024, 16)
    paired = TileGrid.for_scene(h, w, 1024, 16, at_once=2, batch_size=4)
    assert paired.tile_size <= fitted.tile_size <= 1024
    assert len(fitted.col_starts) <= len(paired.col_starts) <= len(fitted.col_starts) + 1
    assert weighted_pixels(paired) <= weighted_pixels(fitted)
    if paired.tile_size != fitted.tile_size:
        assert len(paired.col_starts) % 2 == 0  # the extra column made every batch even


def test_the_dubai_sized_scene_on_two_cores():
    # 3 tiles of 832 px per row leave one alone per row; 4 of 640 px (6.6 MP, not 6.2) run in pairs
    assert TileGrid.for_scene(2448, 2448, 1024, 16, at_once=2, batch_size=4).tile_size == 640
    assert TileGrid.for_scene(2448, 2448, 1024, 16, at_once=1, batch_size=4).tile_size == 832


def test_fixed_input_model_gets_the_full_tile_and_others_a_fitted_one():
    meta = make_meta(bands=3, num_classes=4)
    image = position_image(100, 90)
    free = PixelBackend(meta)
    predict_array(free, image, tile_size=256, overlap=16)
    assert {s[2:] for s in free.shapes} == {(128, 128)}  # one tile: 100 x 90 rounded up to 32s
    fixed = PixelBackend(meta)
    fixed.fixed_input_size = (256, 256)
    got = predict_array(fixed, image, tile_size=256, overlap=16, return_probabilities=True)
    assert {s[2:] for s in fixed.shapes} == {(256, 256)}
    free_result = predict_array(PixelBackend(meta), image, tile_size=256, overlap=16, return_probabilities=True)
    np.testing.assert_allclose(got.probabilities, free_result.probabilities, atol=1e-5)  # a pixel-wise model


def test_exact_multiple_has_no_extra_tile():
    assert axis_starts(96, 32, 32) == [0, 32, 64]
    assert axis_starts(100, 32, 32) == [0, 32, 64, 68]
    assert axis_starts(20, 32, 24) == [0]
    assert len(tile_windows(96, 96, 32, 0)) == 9


def test_overlap_validation():
    assert resolve_overlap(64, None) == 16
    assert resolve_overlap(64, 0.5) == 32
    with pytest.raises(ConfigError):
        resolve_overlap(64, 64)
    with pytest.raises(ConfigError):
        resolve_overlap(64, -1)


@pytest.mark.parametrize("kind", ["cosine", "gaussian", "none"])
@pytest.mark.parametrize("h,w", [(1, 1), (2, 3), (7, 64), (512, 512), (31, 1000)])
def test_blend_weights_never_zero(kind, h, w):
    wgt = window_2d(h, w, kind)
    assert wgt.shape == (h, w) and wgt.dtype == np.float32
    assert np.isfinite(wgt).all()
    assert wgt.min() > 0
    if kind != "none" and h > 4 and w > 4:
        # smooth: centre heavier than border
        assert wgt[h // 2, w // 2] > 10 * wgt[0, 0]


def test_unknown_blend():
    with pytest.raises(ConfigError):
        window_2d(4, 4, "triangle")


@pytest.mark.parametrize("h,w", [(10, 13), (32, 32), (64, 96), (77, 101), (130, 45)])
@pytest.mark.parametrize("blend", ["cosine", "gaussian"])
def test_position_model_reproduces_untiled_result(h, w, blend):
    backend = PixelBackend(make_meta(tile_size=32))
    image = position_image(h, w)
    # untiled reference: the whole image in one call
    ref = backend(np.ascontiguousarray(image.transpose(2, 0, 1)[None]))[0]
    backend.shapes.clear()
    pred = predict_array(backend, image, tile_size=32, overlap=12, batch_size=3, blend=blend,
                         return_probabilities=True)
    assert pred.classes.shape == (h, w) and pred.classes.dtype == np.uint8
    np.testing.assert_array_equal(pred.classes, ref.argmax(axis=0))
    np.testing.assert_allclose(pred.probabilities, ref.transpose(1, 2, 0), rtol=0, atol=2e-6)
    np.testing.assert_allclose(pred.confidence, ref.max(axis=0), rtol=0, atol=2e-6)
    # every batch had the full tile size: edge tiles were shifted, small scenes padded
    assert all(s[2:] == (32, 32) for s in backend.shapes)


def test_normalisation_from_metadata():
    meta = make_meta(mean=[10.0, 20.0, 30.0], std=[2.0, 4.0, 5.0])
    backend = PixelBackend(meta)
    raw = (np.random.default_rng(1).random((40, 50, 3)) * 100).astype(np.float32)
    norm = (raw - np.array([10, 20, 30], np.float32)) / np.array([2, 4, 5], np.float32)
    ref = backend(np.ascontiguousarray(norm.transpose(2, 0, 1)[None]))[0]
    pred = predict_array(backend, raw, return_probabilities=True)
    np.testing.assert_array_equal(pred.classes, ref.argmax(axis=0))
    np.testing.assert_allclose(pred.probabilities, ref.transpose(1, 2, 0), atol=1e-4)


def test_tta_with_pointwise_model_equals_plain_and_undoes_transforms():
    backend = PixelBackend(make_meta())
    image = position_image(40, 40)
    plain = predict_array(backend, image, tile_size=32, return_probabilities=True)
    for mode in ("flips", "d4", True):
        tta = predict_array(backend, image, tile_size=32, tta=mode, return_probabilities=True)
        np.testing.assert_allclose(tta.probabilities, plain.probabilities, atol=1e-5)

    # a position-sensitive backend: output = input band 0 broadcast, asymmetric in space
    class Asym:
        meta = make_meta(num_classes=2, bands=1)

        def __call__(self, b):
            ramp = np.linspace(0, 1, b.shape[-1], dtype=np.float32)[None, None, None, :]
            p = np.clip(b[:, :1] * 0 + ramp, 0, 1)
            return np.concatenate([p, 1 - p], axis=1)

    x = np.zeros((1, 1, 8, 8), np.float32)
    out = infer(Asym(), x, "d4")
    # averaged over the 8 symmetries the ramp becomes symmetric around the centre
    np.testing.assert_allclose(out[0, 0], out[0, 0][::-1, ::-1], atol=1e-6)
    np.testing.assert_allclose(out[0, 0], out[0, 0].T, atol=1e-6)


def test_progress_and_cancel():
    from terraseg.predict import PredictionCancelled

    backend = PixelBackend(make_meta())
    image = position_image(100, 100)
    seen = []
    predict_array(backend, image, tile_size=32, overlap=0, batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 16) and seen[-1] == (16, 16)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(PredictionCancelled):
        predict_array(backend, image, tile_size=32, overlap=0, batch_size=2, cancel=cancel)
    assert calls["n"] == 3


def test_wrong_band_count_is_a_clear_error():
    from terraseg.errors import DataError

    backend = PixelBackend(make_meta(bands=3))
    with pytest.raises(DataError, match="4 bands but the model expects 3"):
        predict_array(backend, np.zeros((20, 20, 4), np.uint8))


def test_nodata_pixels_get_ignore_index():
    backend = PixelBackend(make_meta())
    image = position_image(50, 60) + 1
    image[10:20, 5:15] = 0
    pred = predict_array(backend, image, tile_size=32, nodata=0)
    assert (pred.classes[10:20, 5:15] == 255).all()
    assert (pred.classes[20:] < 5).all()
