"""`python -m nextchar` runs the command line."""

import sys

from nextchar.cli import main

sys.exit(main())
