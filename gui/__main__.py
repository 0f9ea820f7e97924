"""``python -m gui``: the same launcher as the ``featherweight`` script (``gui.launcher``)."""

import sys

from gui.launcher import main

sys.exit(main())
