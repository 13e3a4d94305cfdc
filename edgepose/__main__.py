"""`python -m edgepose` is the `edgepose` command."""
import sys

from .cli import main

sys.exit(main())
