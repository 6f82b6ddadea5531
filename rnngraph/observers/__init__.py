"""Observer (what to record) and Recording (the result of a run)."""

from ._observer import Observer, Recording, Recordings

__all__ = ["Observer", "Recording", "Recordings"]
