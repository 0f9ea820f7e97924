"""``python -m engine``: the headless command line (``engine.cli``); the app: ``python -m gui``."""

import sys

from engine.cli import main

sys.exit(main())
