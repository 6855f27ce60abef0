"""Test helpers for hyperjoule's plug-in families (contract suites run by every back-end).

Importing these modules needs pytest; nothing in hyperjoule imports them at run time.
"""
