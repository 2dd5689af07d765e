"""python -m helpers COMMAND ... (helpers.cli)."""

import sys

from .cli import main

sys.exit(main())
