"""``python -m radproof``: the same as the ``radproof`` command."""

import sys

from radproof.cli import main

sys.exit(main())
