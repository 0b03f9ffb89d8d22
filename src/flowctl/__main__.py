"""`python -m flowctl`."""

from flowctl.cli import main

main()
