"""Ctrl-C and SIGTERM as a request to stop a long loop cleanly, not as an abort mid-step.

Inside ``deferred_stop()`` the first SIGINT or SIGTERM only sets ``StopRequest.signum``: the
loop finishes the step it is in, sees ``requested`` at its next check and stops as it would at
a time limit (save, export). A second signal raises KeyboardInterrupt at once: whoever presses
Ctrl-C twice wants out now. The previous handlers are put back however the block ends. A signal
that came too late for the loop to act on (``acted_on`` still False when the block ends without
an error) is raised again under the previous handlers, so it is never swallowed.

Signal handlers can only be set from the main thread; elsewhere the block changes nothing and
``requested`` stays False.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

#: What a terminal (Ctrl-C), a notebook's interrupt button (SIGINT to the kernel), ``kill`` and
#: job schedulers (SIGTERM) send to ask a process to stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """The first stop signal received inside ``deferred_stop``, if any.

    signum: that signal's number (None: none yet).
    acted_on: set by the loop once it stops for the request.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.acted_on = False

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str | None:
        """``"SIGINT"`` or ``"SIGTERM"`` once requested."""
        return None if self.signum is None else signal.Signals(self.signum).name

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt(f"second stop signal ({signal.Signals(signum).name})")
        self.signum = signum


@contextmanager
def deferred_stop(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[StopRequest]:
    """Within the block, the first of ``signals`` sets the yielded ``StopRequest``; a second
    raises KeyboardInterrupt. Handlers installed only in the main thread, always restored."""
    request = StopRequest()
    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signals:
            if signal.getsignal(signum) is None:  # set outside Python: could not be put back
                continue
            previous[signum] = signal.signal(signum, request._handle)
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if request.requested and not request.acted_on:
        signal.raise_signal(request.signum)  # to the handler the caller had
