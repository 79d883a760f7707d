"""Crop geometry of the MediaPipe refinement pass (`refine_crops`): pure functions, no mediapipe needed."""

from __future__ import annotations

import numpy as np

from cvpose_ros.detection.mediapipe_backend import (
    REFINE_CROP_FACTOR,
    REFINE_CROP_OFFSET,
    cut_square,
    refine_squares,
    same_person,
)


def person(x0: float, y0: float, width: float, height: float, seed: int = 0) -> np.ndarray:
    """33 landmarks spread over the box [x0, x0 + width] x [y0, y0 + height], touching every side."""
    rng = np.random.default_rng(seed)
    points = rng.uniform([x0, y0], [x0 + width, y0 + height], size=(33, 2))
    points[:4] = [[x0, y0 + height / 2], [x0 + width, y0 + height / 2], [x0 + width / 2, y0],
                  [x0 + width / 2, y0 + height]]
    return points


def test_one_square_is_centred_on_the_person_and_follows_them_not_the_image():
    tall = person(100.0, 50.0, 200.0, 400.0)
    ((x0, y0, side),) = refine_squares(tall, 1)
    assert side == round(REFINE_CROP_FACTOR * 400.0)
    assert abs(x0 + side / 2 - 200.0) <= 0.5 and abs(y0 + side / 2 - 250.0) <= 0.5
    # the same person 37 px right and 11 px down: the same square moved by the same amount
    assert refine_squares(tall + [37.0, 11.0], 1) == [(x0 + 37, y0 + 11, side)]


def test_several_squares_sit_on_a_small_circle_around_the_person():
    squares = np.array(refine_squares(person(0.0, 0.0, 300.0, 300.0), 4), dtype=float)
    side = squares[0, 2]
    assert np.all(squares[:, 2] == side)
    centres = squares[:, :2] + side / 2 - 150.0
    assert np.allclose(np.linalg.norm(centres, axis=1), REFINE_CROP_OFFSET * side, atol=1.0)
    assert len({tuple(c) for c in np.round(centres)}) == 4


def test_cut_square_pads_with_black_and_shrinks_large_squares():
    image = np.arange(60 * 80 * 3, dtype=np.uint32).reshape(60, 80, 3).astype(np.uint8) | 1  # no black pixel
    square = cut_square(image, -10, 20, 50, 512)   # leaves the image on the left and at the bottom
    assert square.shape == (50, 50, 3)
    assert np.array_equal(square[:40, 10:], image[20:60, 0:40])
    assert not square[:, :10].any() and not square[40:].any()
    small = cut_square(image, 0, 0, 60, 30)
    assert small.shape == (30, 30, 3)
    assert not cut_square(image, 500, 500, 40, 512).any()  # entirely outside: black


def test_a_crop_result_far_from_the_person_is_someone_else():
    tall = person(100.0, 50.0, 200.0, 400.0)
    assert same_person(tall + 5.0, tall)
    assert not same_person(tall + [150.0, 0.0], tall)  # a neighbour beside them
