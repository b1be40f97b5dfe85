"""User-facing errors: caught by the CLI and printed as one line, exit code 2."""


class UserError(Exception):
    """A mistake in the user's input (file, profile, flag): never shown as a traceback."""


class ProfileError(UserError):
    """An array profile that cannot be loaded or fails validation."""


class ConfigError(UserError):
    """A configuration file that cannot be loaded or fails validation."""


class SourceError(UserError):
    """An audio source (file or device) that cannot be opened or read."""
