"""Stop requests that cannot be lost: a stop signal becomes :class:`Interrupted`, and stays pending until honoured.

The command line turns SIGINT, SIGTERM and SIGHUP into an exception raised wherever the program is
(:func:`request`), so that cleanup runs as for Ctrl-C. Python drops an exception raised while a destructor
(``__del__``) runs -- it prints "Exception ignored in ..." and goes on -- and such code runs at unpredictable
moments (garbage collection, compiled code being loaded). So the request is also kept: :func:`check` raises it
again, and the places that make a result final (an output file replacing its target, each coded chunk) call it.
Without a request (the library used on its own), :func:`check` does nothing.
"""

from __future__ import annotations

_pending: list[int] = []  # the signal of the request not yet honoured (at most one)


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) raised where the program was, so that cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def request(signum: int) -> None:
    """Record a stop request for ``signum`` and raise it (:class:`Interrupted`)."""
    if not _pending:
        _pending.append(signum)
    raise Interrupted(_pending[0])


def check() -> None:
    """Raise :class:`Interrupted` if a stop was requested (its first raise may have been dropped)."""
    if _pending:
        raise Interrupted(_pending[0])


def clear() -> None:
    """Forget a pending request (the command that received it has ended)."""
    _pending.clear()
