"""`python -m nst ...` runs the `nst` command."""

from nst.cli.main import main

main()
