"""adapt's recipe catalog: short, tested adapters for real libraries.

Each module adapts one library and is self-contained: import it from
``adapt.recipes``, or copy it into your project with
``python -m adapt recipes copy NAME DEST`` and own it.  ``recipes/README.md``
states the contract every recipe follows.
"""
