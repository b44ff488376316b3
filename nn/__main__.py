"""``python -m nn`` is the ``valuegrad`` command."""

import sys

from nn.cli import main

sys.exit(main())
