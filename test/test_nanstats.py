"""nanmedian_last equals np.nanmedian (bit for bit) on the shapes the frame path uses, NaN rows included."""

import warnings

import numpy as np
import pytest

from cvpose_ros.nanstats import nanmedian_last


@pytest.mark.parametrize("shape", [(5, 17), (1, 17), (0, 17), (3, 4, 17), (7, 1), (4, 2)])
def test_equals_numpy_nanmedian(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(100):
        values = rng.normal(size=shape)
        values[rng.random(shape) < rng.random()] = np.nan
        if shape[0]:
            values[rng.random(shape[:-1]) < 0.2] = np.nan  # whole rows without a value
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanmedian(values, axis=-1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning for all-NaN rows
            got = nanmedian_last(values)
        assert got.shape == expected.shape and np.array_equal(got, expected, equal_nan=True)


def test_even_count_is_the_mean_of_the_middle_values():
    np.testing.assert_array_equal(nanmedian_last(np.array([[4.0, np.nan, 1.0, 2.0, 3.0], [np.nan] * 5])),
                                  [2.5, np.nan])
