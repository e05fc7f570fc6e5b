"""`python -m clients` is the `sqlgate` command."""

import sys

from clients.cli import main

sys.exit(main())
