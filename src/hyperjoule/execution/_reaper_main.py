"""Watchdog process that kills training process groups when the runner dies.

Run as a script (not imported): it reads ``+PGID`` / ``-PGID`` lines on stdin from the
runner. When stdin reaches end-of-file without a final ``exit`` line, the runner is gone
(killed by any signal, even SIGKILL): every group still tracked gets SIGTERM, then
SIGKILL after a short grace, so no training process outlives its runner. It deliberately
imports nothing from hyperjoule so that it starts fast and cannot fail on a broken
environment.
"""

import os
import signal
import sys
import time

GRACE_S = 2.0


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> int:
    """Track groups until stdin closes; kill the ones left if the runner vanished."""
    # Ctrl-C in the terminal is for the runner, which stops runs cleanly itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tracked: set[int] = set()
    for line in sys.stdin:
        text = line.strip()
        if text == "exit":
            return 0
        if text[:1] in "+-" and text[1:].isdigit():
            pgid = int(text[1:])
            if text[0] == "+":
                tracked.add(pgid)
            else:
                tracked.discard(pgid)
    for pgid in tracked:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and any(_alive(p) for p in tracked):
        time.sleep(0.05)
    for pgid in tracked:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    return 0


if __name__ == "__main__":
    sys.exit(main())
