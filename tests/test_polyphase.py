"""Polyphase stride-1 forms of strided and transposed convolutions equal Keras' layers."""

import keras
import numpy as np
import pytest

from beatgan.polyphase import strided_conv1d_same, transposed_conv1d_same


@pytest.mark.parametrize("taps,stride", [(25, 4), (5, 4), (4, 4), (1, 4), (25, 2), (3, 3), (8, 2)])
def test_strided_and_transposed_convolutions_match_keras(rng, taps, stride):
    x = rng.normal(size=(2, 12 * stride, 3)).astype("float32")
    conv = keras.layers.Conv1D(5, taps, strides=stride, padding="same", use_bias=False)
    expected = np.asarray(conv(x))
    got = np.asarray(strided_conv1d_same(x, conv.kernel, stride=stride))
    assert got.shape == expected.shape == (2, 12, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

    up = keras.layers.Conv1DTranspose(5, taps, strides=stride, padding="same", use_bias=False)
    expected = np.asarray(up(x))
    got = np.asarray(transposed_conv1d_same(x, up.kernel, stride=stride))
    assert got.shape == expected.shape == (2, 12 * stride * stride, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_strided_convolution_needs_whole_frames(rng):
    with pytest.raises(ValueError, match="not a multiple of stride 4"):
        strided_conv1d_same(np.zeros((1, 10, 2), "float32"), np.zeros((25, 2, 3), "float32"),
                            stride=4)
