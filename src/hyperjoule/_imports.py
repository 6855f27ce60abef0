"""Optional libraries (Ray, Optuna), imported only by the features that use them.

Like ``optuna/_imports.py``: importing hyperjoule never imports an optional library; a
feature asks for it when it is used, and a missing one becomes a
:class:`~hyperjoule.errors.PreflightError` that says which extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from hyperjoule.errors import PreflightError

__all__ = ["import_optional"]


def import_optional(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or explain how to install it.

    Args:
        module: Module to import (``"ray"``).
        extra: The hyperjoule extra that installs it (``"ray"``).
        feature: What needs it, for the message (``"--executor ray"``).

    Raises:
        PreflightError: The module is not installed (or fails to import); the message
            names the ``pip install`` command that fixes it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise PreflightError(
            f"{feature} needs the Python package {module!r}, which cannot be imported "
            f"({e}); install it with: pip install 'hyperjoule[{extra}]'"
        ) from e
