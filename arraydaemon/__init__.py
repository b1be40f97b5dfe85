"""arraydaemon: real-time sound-source localization for microphone arrays."""

__version__ = "0.1.0"
