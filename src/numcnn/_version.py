"""The package version, in a module of its own so that any part reads it without importing the
package facade (``numcnn/__init__``), which imports every part."""

__version__ = "0.1.0"
