"""Sphinx configuration; CI builds with ``-W`` (warnings are errors)."""

project = "adapt"
author = "the adapt developers"
copyright = "2026, the adapt developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.intersphinx"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = ["_static"]
