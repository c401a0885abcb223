"""``python -m saddlescope.cli``: the ``saddlescope`` command."""

from saddlescope.cli import main

main()
