"""The exception hierarchy: one base class, subclasses that also inherit the matching built-in."""

from __future__ import annotations


class LiveError(Exception):
    """Base class of every error magenta-live raises on purpose."""


class ModelFileError(LiveError, ValueError):
    """A model file or `.mag` bundle is unreadable, truncated, or inconsistent."""


class UnknownConfigError(LiveError, KeyError):
    """A configuration id (such as ``lookback_rnn``) that magenta-live does not know."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want a sentence.
        return str(self.args[0]) if self.args else ""


class EncodingError(LiveError, ValueError):
    """An event that the model's encoding cannot represent."""


class ChordSymbolError(LiveError, ValueError):
    """A chord symbol that cannot be parsed, such as ``"H7"``."""


class MidiFileError(LiveError, ValueError):
    """A file that is not a readable Standard MIDI File."""


class PortNotFoundError(LiveError, LookupError):
    """A MIDI port name that matches no port, or more than one."""


class ConfigFileError(LiveError, ValueError):
    """A bad option in the command line or the TOML configuration file."""


class BackendError(LiveError, RuntimeError):
    """No usable MIDI backend, or the MIDI system refused to open a port."""


class OutputPathError(LiveError, OSError):
    """A file that cannot be written where it was asked for (a folder, a missing or read-only
    folder, a full disk)."""


class SettingError(ConfigFileError):
    """A setting's value outside its type or range (command line, TOML file, or knob)."""
