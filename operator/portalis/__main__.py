"""``python -m portalis`` is the ``portalis`` command."""

import sys

from portalis.cli.main import main

sys.exit(main())
