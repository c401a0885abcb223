"""Example factories for ``saddlescope analyze`` (run from the repository root)."""
