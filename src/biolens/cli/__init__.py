"""The ``biolens`` command line: a thin layer over the public API (one file per command)."""
