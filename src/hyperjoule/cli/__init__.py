"""The ``hyperjoule`` command line: a thin layer over the library.

``main()`` returns the exit status: 0 the command did its job (failed runs are recorded,
not fatal); 1 with ``--fail-on-error`` when a run failed; 2 invalid input or environment
(one line on stderr, nothing written); 130 interrupted (state saved; ``run`` resumes).
"""

from __future__ import annotations

from hyperjoule.cli._app import app, main

__all__ = ["app", "main"]
