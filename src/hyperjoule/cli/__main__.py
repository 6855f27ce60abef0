"""``python -m hyperjoule.cli``: the same as the ``hyperjoule`` command."""

import sys

from hyperjoule.cli import main

sys.exit(main())
