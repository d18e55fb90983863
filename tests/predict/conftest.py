"""Fixtures for the prediction tests."""

from __future__ import annotations

import pytest
from predict_helpers import PixelBackend, make_meta


@pytest.fixture
def pixel_backend() -> PixelBackend:
    return PixelBackend(make_meta())
