"""The package version, in a module of its own so that any part can name it without importing the
whole package (``tests/test_structure.py`` keeps it equal to ``pyproject.toml``'s)."""

__version__ = "0.1.0"
