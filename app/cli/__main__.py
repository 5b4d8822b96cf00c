"""`python -m app.cli`: the same as `weft-cli`."""
import sys

from app.cli import main

sys.exit(main())
