"""Exceptions raised by expman, one class per C status code.

Each class also derives from the built-in exception a Python user would catch for that kind of
failure (a bad name is a ``ValueError``, a missing directory a ``FileNotFoundError``), so code
written against the seed framework's plain exceptions keeps working.
"""

__all__ = [
    "ExpmanError",
    "NullArgumentError",
    "EncodingError",
    "PanicError",
    "InvalidArgumentError",
    "IoError",
    "InvalidNameError",
    "InvalidValueError",
    "CorruptError",
    "NotFoundError",
    "InvalidStateError",
    "ConfigError",
    "UnsupportedError",
]


class ExpmanError(Exception):
    """Base class of every error reported by the expman library.

    ``code`` is the C status code (see ``include/expman.h``); the message is the library's own
    text, which names the path, field or value and says what to do.
    """

    #: The C status code; overridden per subclass, set per instance for unknown codes.
    code = None

    @property
    def message(self):
        return str(self.args[0]) if self.args else ""


# The status codes below are the C ABI's; they are stable and never reused.


class NullArgumentError(ExpmanError, ValueError):
    """A required pointer was NULL (a bug in the bindings, or a closed handle)."""

    code = 1


class EncodingError(ExpmanError, ValueError):
    """A string or path is not valid UTF-8."""

    code = 2


class PanicError(ExpmanError, RuntimeError):
    """The library hit an internal bug; it was caught at the boundary. Please report it."""

    code = 3


class InvalidArgumentError(ExpmanError, ValueError):
    """An argument is out of range (for example an unknown sync mode)."""

    code = 4


class IoError(ExpmanError, OSError):
    """An operating-system call failed (disk full, permission denied, ...)."""

    code = 10


class InvalidNameError(ExpmanError, ValueError):
    """An experiment, table or field name is not acceptable; the message says why."""

    code = 11


class InvalidValueError(ExpmanError, ValueError):
    """A value cannot be stored in a metrics table."""

    code = 12


class CorruptError(ExpmanError, ValueError):
    """A file in the experiment directory is not what expman wrote."""

    code = 13


class NotFoundError(ExpmanError, FileNotFoundError):
    """An experiment directory, run or table does not exist."""

    code = 14


class InvalidStateError(ExpmanError, RuntimeError):
    """The call is not allowed in the current state."""

    code = 15


class ConfigError(ExpmanError, ValueError):
    """A configuration file, argument or environment variable is wrong."""

    code = 16


class UnsupportedError(ExpmanError, NotImplementedError):
    """This build of the library lacks the optional feature the call needs."""

    code = 17


_BY_CODE = {
    cls.code: cls
    for cls in (
        NullArgumentError,
        EncodingError,
        PanicError,
        InvalidArgumentError,
        IoError,
        InvalidNameError,
        InvalidValueError,
        CorruptError,
        NotFoundError,
        InvalidStateError,
        ConfigError,
        UnsupportedError,
    )
}


#: How many characters of a caller's value a message quotes (the library quotes as many).
SHOWN_LIMIT = 200


def shown(value, limit=SHOWN_LIMIT):
    """``repr(value)`` for an error message, cut to ``limit`` characters with the total length
    when it is longer: a 10 MB name echoed in full would make the message useless."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value)} characters)"
    text = repr(value)
    if len(text) > limit:
        return f"{text[:limit]}… ({len(text)} characters)"
    return text


def error_for(code, message):
    """The exception for status ``code`` with ``message``, without the C function's name that
    the library puts before it (``expman_experiment_create: ``): the traceback names the
    Python call, and the C name only puzzled Python users."""
    prefix, sep, rest = message.partition(": ")
    if sep and prefix.startswith("expman_") and prefix.replace("_", "").isalnum():
        message = rest
    cls = _BY_CODE.get(code)
    if cls is None:
        err = ExpmanError(f"{message} (status {code})")
        err.code = code
        return err
    # One positional argument only: OSError treats two as (errno, strerror).
    return cls(message)
