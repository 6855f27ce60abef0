"""Bundled CPU-friendly training targets (``digits/``) and a quickstart study.

The scripts are plain files run as separate processes (``hyperjoule init`` copies them);
this module only marks the directory as package data.
"""
