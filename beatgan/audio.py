"""Sample-rate conversion for loops: decimation 44.1 -> 14.7 kHz and resampling of other rates.

Signals are numpy arrays with time on axis 0: ``(time,)`` or ``(time, channels)``. Every
function takes the signal as its only positional argument and everything else by keyword.

Two decimation methods (``Config.decimation``):

* ``"naive"`` keeps every ``factor``-th sample, ``x[::3]``, exactly as BeatGAN (2018) did. Energy
  above the new Nyquist frequency (7.35 kHz: most of a hi-hat) folds back into the band as noise.
* ``"polyphase"`` low-passes first with a linear-phase Kaiser-window FIR (flat to 80 % of the new
  Nyquist frequency, about 80 dB down from it on: 79.49-79.9 dB at worst, as ``kaiserord``'s
  design rule lands) and keeps every ``factor``-th output, via
  ``scipy.signal.resample_poly``. The filter is centred, so the output is not delayed.

The filter reaches ``filter_margin(...)`` input samples past the last output sample; a reader
that cuts a segment out of a longer file should read that many extra frames so that the last
output samples see real audio rather than the zeros ``resample_poly`` assumes past the end.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
from scipy import signal

from .config import DECIMATION_METHODS

#: Attenuation asked of the anti-aliasing filters from the output Nyquist frequency on (dB);
#: ``kaiserord``'s approximate rule gives 79.49-79.9 dB at worst. Not raised: a longer filter
#: would change every decimated loop, and with it every recorded figure, for half a dB.
STOPBAND_DB = 80.0
#: Where the passband ends, as a fraction of the output Nyquist frequency. 0.8 keeps 1 kHz flat
#: (well within 0.01 dB) and costs ~154 taps for 44.1 -> 14.7 kHz, ~1 ms per 2-beat stereo loop.
PASSBAND_FRACTION = 0.8


@functools.lru_cache(maxsize=32)
def _lowpass_taps(up: int, down: int, stopband_db: float, passband_fraction: float) -> np.ndarray:
    # The filter runs at the up-sampled rate; the narrower of the two Nyquist frequencies,
    # 1 / max(up, down) of that rate's Nyquist, is where the stopband starts.
    stop = 1.0 / max(up, down)
    width = stop * (1.0 - passband_fraction)
    numtaps, beta = signal.kaiserord(stopband_db, width)
    numtaps |= 1  # odd length: a whole-sample group delay, so resample_poly can centre it
    taps = signal.firwin(numtaps, stop - width / 2, window=("kaiser", beta))
    taps.setflags(write=False)
    return taps


def lowpass_taps(*, up: int, down: int, stopband_db: float = STOPBAND_DB,
                 passband_fraction: float = PASSBAND_FRACTION) -> np.ndarray:
    """FIR taps (float64, unit DC gain, odd length) of the anti-aliasing filter for ``up/down``.

    Designed with a Kaiser window (``scipy.signal.kaiserord``) for the rate ``up * input rate``:
    passband to ``passband_fraction`` of the lower Nyquist frequency, ``stopband_db`` down from it.
    The returned array is read-only (it is cached).
    """
    if up < 1 or down < 1:
        raise ValueError(f"up and down must be positive integers, got up={up}, down={down}")
    if not 0.0 < passband_fraction < 1.0:
        raise ValueError(f"passband_fraction must be in (0, 1), got {passband_fraction}")
    return _lowpass_taps(int(up), int(down), float(stopband_db), float(passband_fraction))


def filter_margin(*, up: int = 1, down: int) -> int:
    """Input samples the ``up/down`` filter reaches beyond the last input sample it is centred on.

    Read this many frames past a segment's end so its last output samples are exact.
    """
    half_len = (lowpass_taps(up=up, down=down).size - 1) // 2
    return math.ceil(half_len / up) + 1


def _check_signal(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"expected a signal of shape (time,) or (time, channels), got shape {x.shape}")
    return x


def decimate(x: np.ndarray, *, factor: int = 3, method: str = "polyphase") -> np.ndarray:
    """Lower the sample rate of ``x`` (time on axis 0) by the whole number ``factor``.

    ``method="naive"`` returns ``x[::factor]`` (a view; bit for bit the seed's decimation).
    ``method="polyphase"`` low-passes with ``lowpass_taps(up=1, down=factor)`` first and returns
    ``ceil(len(x) / factor)`` samples in ``x``'s float dtype (float32 stays float32), aligned with
    ``x[::factor]`` in time (no delay).
    """
    x = _check_signal(x)
    if int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be a positive whole number, got {factor}")
    factor = int(factor)
    if method == "naive" or factor == 1:
        if method not in DECIMATION_METHODS:
            raise ValueError(f"method must be one of {DECIMATION_METHODS}, got {method!r}")
        return x[::factor]
    if method != "polyphase":
        raise ValueError(f"method must be one of {DECIMATION_METHODS}, got {method!r}")
    return _resample_poly(x, up=1, down=factor)


def resample(x: np.ndarray, *, orig_rate_hz: int, target_rate_hz: int) -> np.ndarray:
    """Resample ``x`` (time on axis 0) from ``orig_rate_hz`` to ``target_rate_hz``.

    Rational polyphase resampling (``up/down = target/orig`` in lowest terms) with the Kaiser
    low-pass of ``lowpass_taps``; output length ``ceil(len(x) * up / down)``, not delayed.
    Returns ``x`` unchanged when the rates are equal.
    """
    x = _check_signal(x)
    if orig_rate_hz <= 0 or target_rate_hz <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate_hz} -> {target_rate_hz} Hz")
    ratio = Fraction(int(target_rate_hz), int(orig_rate_hz))
    if ratio == 1:
        return x
    return _resample_poly(x, up=ratio.numerator, down=ratio.denominator)


def resample_margin(*, orig_rate_hz: int, target_rate_hz: int) -> int:
    """``filter_margin`` of ``resample`` between these rates, in input samples (0 if equal)."""
    ratio = Fraction(int(target_rate_hz), int(orig_rate_hz))
    if ratio == 1:
        return 0
    return filter_margin(up=ratio.numerator, down=ratio.denominator)


def _resample_poly(x: np.ndarray, *, up: int, down: int) -> np.ndarray:
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    # Taps in the signal's dtype: float32 audio is filtered in float32 (twice as fast, and
    # its 24-bit mantissa is the precision of the source files anyway).
    taps = np.asarray(lowpass_taps(up=up, down=down), dtype=dtype)
    return signal.resample_poly(x.astype(dtype, copy=False), up, down, axis=0, window=taps)
