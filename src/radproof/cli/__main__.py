"""``python -m radproof.cli``: the same as the ``radproof`` command."""

import sys

from radproof.cli import main

sys.exit(main())
