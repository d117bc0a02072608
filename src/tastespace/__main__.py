"""``python -m tastespace`` runs the command line."""

from tastespace.cli import main

main()
