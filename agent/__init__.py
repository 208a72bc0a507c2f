"""secprof: keeps a host's security profiles in the state a directory says they should be in."""

__version__ = "0.1.0"
