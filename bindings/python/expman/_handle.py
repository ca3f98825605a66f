"""One owner of a library handle: ``close()``, ``with`` and the finaliser (wasmtime-py's
``Managed`` pattern), shared by ``Experiment``, the read-back metrics and ``Server``."""


class Handle:
    """Owns one pointer from the library; ``_free(ptr)`` releases it exactly once.

    ``close()`` is idempotent; the garbage collector calls it too (never raising from the
    finaliser); ``with handle:`` closes at the end of the block. Subclasses that release more
    than the pointer override ``close()`` and call ``super().close()``.
    """

    #: The library's pointer; None before it is set and once released.
    _ptr = None

    def _free(self, ptr):
        raise NotImplementedError

    def close(self):
        """Releases the library handle (idempotent)."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            self._free(ptr)

    def __del__(self):
        try:
            self.close()
        except Exception:  # never raise from a finaliser
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False
