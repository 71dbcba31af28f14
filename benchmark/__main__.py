"""`python -m benchmark`: the command line (benchmark/cli)."""

import sys

from benchmark import interrupt

if __name__ == "__main__":
    # Before the imports (torch takes seconds): a signal meanwhile is noticed once the command
    # starts, which then stops with the interrupted line instead of dying without a word.
    interrupt.install()
    from benchmark.cli import main

    sys.exit(main())
