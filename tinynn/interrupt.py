"""Deferring Ctrl-C across critical sections, so an optimizer step is never half-applied."""

import signal
import threading
from contextlib import contextmanager


class InterruptGuard:
    """Within ``with InterruptGuard() as guard:``, SIGINT raises KeyboardInterrupt at once,
    except inside ``with guard.critical():``, where it is held until the block ends.

    Only active in the main thread and when SIGINT has Python's default handler or a handler of
    its own; otherwise (ignored SIGINT, other threads) it changes nothing.
    """

    def __init__(self):
        self._previous = None
        self._in_critical = False
        self._pending = False

    def __enter__(self) -> "InterruptGuard":
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        if self._in_critical:
            self._pending = True
        else:
            raise KeyboardInterrupt

    @contextmanager
    def critical(self):
        """Hold SIGINT until the block has finished; then raise KeyboardInterrupt if one came."""
        self._in_critical = True
        try:
            yield
        finally:
            self._in_critical = False
        if self._pending:
            self._pending = False
            raise KeyboardInterrupt
