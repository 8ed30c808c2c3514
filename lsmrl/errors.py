"""User-facing error types.

Every error that a user can cause (a malformed data set folder, a bad video, a
wrong checkpoint) is raised as a subclass of :class:`LSMRLError` whose message
says what is wrong *and* how to fix it. The CLI prints the message without a
traceback; the app shows it in a ``gr.Error``.
"""


class LSMRLError(Exception):
    """Base class of errors whose message is meant for the user."""


class DatasetLayoutError(LSMRLError):
    """A data set root does not have the expected files (names the missing file and the layout)."""


class VideoError(LSMRLError):
    """A video (or frame folder) cannot be read, or is outside the upload limits."""


class CheckpointError(LSMRLError):
    """A checkpoint is missing, not safetensors, or does not match its config."""


class ConfigError(LSMRLError):
    """A config file or a dotted override is invalid."""
