"""`python -m pipeline` runs the command-line tool."""

from pipeline.cli import main

main()
