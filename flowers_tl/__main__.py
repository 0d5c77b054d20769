"""`python -m flowers_tl ...` runs the `flowers-tl` command line."""

import sys

from .tool.cli import main

sys.exit(main())
