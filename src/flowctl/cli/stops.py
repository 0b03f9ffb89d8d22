"""The stop signals a command received, and the handlers that record them.

Library code can swallow the exception a signal raises (pydantic-core reports one raised while
it compiles a pattern as "Exception ignored" and goes on): what would then carry on, a call to
the server or a failure caused by the stop, asks `stop_requested` first.
"""

from __future__ import annotations

import signal

signalled: list[int] = []  # the stop signals received, in order


def stop_requested() -> bool:
    return bool(signalled)


def _on_sigterm(signum: int, frame: object) -> None:
    from flowctl.errors import Terminated

    signalled.append(signum)
    raise Terminated


def _on_sigint(signum: int, frame: object) -> None:
    signalled.append(signum)
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """SIGTERM stops a command as SIGINT does: with a line saying what it was doing, exit 143.
    (`flowctl worker` installs its own handlers, which drain it gracefully.)"""
    signal.signal(signal.SIGINT, _on_sigint)
    signal.signal(signal.SIGTERM, _on_sigterm)
