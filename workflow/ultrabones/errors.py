"""Exception hierarchy: one class per kind of failure a user must act on."""

__all__ = [
    "CalibrationError",
    "ConfigError",
    "InputDataError",
    "ParameterError",
    "RegistrationError",
    "UltrabonesError",
]


class UltrabonesError(Exception):
    """Base class: the CLI prints these as one line and exits 1."""


class ConfigError(UltrabonesError):
    """A configuration value or option is wrong (names the key)."""


class ParameterError(ConfigError, ValueError):
    """A parameter dataclass got a bad value (names the parameter).

    Also a ``ValueError``: the dataclasses are used as a library too.
    """


class InputDataError(UltrabonesError):
    """An input file is missing, unreadable or malformed (names the file and row)."""


class CalibrationError(UltrabonesError):
    """The probe calibration cannot be computed from the recording."""


class RegistrationError(UltrabonesError):
    """The specimen marker cannot be registered to the CT within the bound."""
