"""The module forms: `python -m helpers.run` would define helpers.run and do nothing
else, so run, build, screen, measure and cli, run as modules, say the command's form."""

import sys


def wrong_form(module):
    """Print `use: python -m helpers <command>` for helpers.<module>, exit status 2."""
    command = "<command>" if module == "cli" else module
    print(f"use: python -m helpers {command}", file=sys.stderr)
    sys.exit(2)
