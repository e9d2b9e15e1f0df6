"""ultrabones: an open label factory for tracked-ultrasound bone datasets."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ultrabones")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
