"""`python -m flowers_tl ...` runs the `flowers-tl` command line."""

import sys

from .cli import main

sys.exit(main())
