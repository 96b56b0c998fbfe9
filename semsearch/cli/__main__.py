"""``python -m semsearch.cli``: the same command line as the ``semsearch`` script."""

from semsearch.cli import main

main()
