"""poolprof_stage: name the stages of a Python program for poolprof; does nothing without the shim.

    import poolprof_stage
    with poolprof_stage.stage("fetch"):
        ...
    @poolprof_stage.stage("transform")
    def transform(x): ...

The markers are looked up in the running process (ctypes.CDLL(None)), where poolprof's
preloaded shim exports prof_stage_begin/prof_stage_end. Without poolprof the lookup fails
once, at import, and every marker is a no-op: the program runs unchanged.
"""
import ctypes
import functools

__all__ = ["stage", "begin", "end", "enabled"]

try:
    _lib = ctypes.CDLL(None)
    _begin = _lib.prof_stage_begin
    _end = _lib.prof_stage_end
    _begin.argtypes = [ctypes.c_char_p]
    _begin.restype = None
    _end.argtypes = []
    _end.restype = None
except (OSError, AttributeError):
    _begin = _end = None

enabled = _begin is not None


def begin(name):
    """Open stage `name` on this thread (nestable). No-op without the shim."""
    if _begin is not None:
        _begin(name.encode() if isinstance(name, str) else name)


def end():
    """Close this thread's innermost open stage. No-op without the shim."""
    if _end is not None:
        _end()


class stage:
    """Context manager and decorator: the enclosed code belongs to stage `name`."""

    __slots__ = ("_name",)

    def __init__(self, name):
        self._name = name.encode() if isinstance(name, str) else bytes(name)

    def __enter__(self):
        if _begin is not None:
            _begin(self._name)
        return self

    def __exit__(self, *exc):
        if _end is not None:
            _end()
        return False

    def __call__(self, fn):
        name = self._name

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if _begin is None:
                return fn(*args, **kwargs)
            _begin(name)
            try:
                return fn(*args, **kwargs)
            finally:
                _end()

        return wrapper
