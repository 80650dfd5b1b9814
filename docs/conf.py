"""Sphinx configuration; CI builds with ``-W`` (warnings are errors)."""

project = "adapt"
author = "the adapt developers"
copyright = "2026, the adapt developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.intersphinx"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = False
exclude_patterns = ["_build", "examples"]
html_theme = "furo"
html_title = "adapt"
html_static_path = ["_static"]
# A content column wide enough for 100-column code at 1280 px (tests/test_docs_render.py)
html_css_files = ["wide.css"]
