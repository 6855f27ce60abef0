"""A report worker: ``python -m hyperjoule.report._worker``, fed by :class:`FigurePool`.

Reads ``(job name, keyword arguments)`` messages on stdin, answers ``(True, result)`` or
``(False, error text)`` on stdout, until stdin closes. Jobs: the ``draw_*`` figures and
:data:`hyperjoule.report._pool.JOBS`.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Serve drawing requests until the parent closes the pipe."""
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    # Nothing else may write to the reply pipe: stray prints go to stderr.
    sys.stdout = sys.stderr

    from hyperjoule.report._pool import find_job, read_frame, write_frame

    while True:
        try:
            name, kwargs = read_frame(requests)
        except EOFError:
            return
        try:
            result = find_job(name)(**kwargs)
        except Exception as e:  # noqa: BLE001 - reported to the parent, which redoes the job
            write_frame(replies, (False, f"{name} failed: {type(e).__name__}: {e}"))
        else:
            write_frame(replies, (True, result))


if __name__ == "__main__":
    main()
