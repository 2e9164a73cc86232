"""`python -m kea` runs the CLI (tests and benchmarks use it to reach the venv's kea)."""

import sys

from kea.cli import main

sys.exit(main())
