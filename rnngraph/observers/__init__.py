"""Observer (what to record) and Recording (the result of a run)."""

from ._observer import Observer, Recording

__all__ = ["Observer", "Recording"]
