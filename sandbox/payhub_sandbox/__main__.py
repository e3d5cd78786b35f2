"""``python -m payhub_sandbox``: the same as the ``payhub-sandbox`` command."""

import sys

from payhub_sandbox.cli import main

sys.exit(main())
