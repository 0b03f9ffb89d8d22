"""`python -m flowctl`."""

from flowctl.entry import main

main()
