"""Allow ``python -m mnistgan``."""

from mnistgan.cli import main

main()
