"""Render tier: HTML sections, figures and export files made from the analyses."""
