"""magenta-live: a real-time MIDI co-performer built on Magenta-family RNN models.

Importing ``live`` never imports TensorFlow; only ``.mag`` conversion and ``training`` do.
"""

from live.errors import LiveError

__version__ = "0.1.0"
__all__ = ["LiveError", "__version__"]
