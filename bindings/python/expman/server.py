"""The web UI served from inside this process (``expman_server_start``): a trainer can expose
its own live status page while it runs.

    server = expman.serve("./experiments")   # http://127.0.0.1:6066/ (or the next free port)
    ...
    server.stop()
"""

import ctypes

from . import _ffi
from ._errors import UnsupportedError
from ._handle import Handle

lib = _ffi.lib


class Server(Handle):
    """A running UI server over an experiments directory; stop it with ``stop()`` (or
    ``close()``) or use it as a context manager."""

    def __init__(self, directory, host=None, port=6066):
        if not _ffi.features() & _ffi.FEATURE_SERVER:
            raise UnsupportedError(
                "this build of expman has no web UI server: reinstall with the `server` "
                "feature (EXPMAN_FEATURES=server pip install ./bindings/python), or run "
                f"`EXP {directory}` instead"
            )
        handle = ctypes.c_void_p()
        _ffi.check(
            lib.expman_server_start(
                _ffi.encode(str(directory), "directory"),
                None if host is None else _ffi.encode(str(host), "host"),
                int(port),
                ctypes.byref(handle),
            )
        )
        self._ptr = handle
        self.url = _ffi.decode(lib.expman_server_url(handle))

    def _free(self, ptr):
        lib.expman_server_stop(ptr)

    def stop(self):
        """Stops serving (idempotent)."""
        self.close()

    def __repr__(self):
        return f"<expman.Server {self.url}>"


def serve(directory, host=None, port=6066):
    """Serves the web UI for ``directory`` on background threads; returns the ``Server``."""
    return Server(directory, host=host, port=port)
