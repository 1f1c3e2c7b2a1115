"""`python -m clio_engine.cli ...`: the console script's `main`, run as a module."""
import sys

from clio_engine.cli import main

sys.exit(main())
