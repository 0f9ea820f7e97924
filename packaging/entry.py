"""Entry point of the frozen app: the same ``gui.launcher.main`` as the ``featherweight`` script.

``featherweight`` opens the desktop app, ``featherweight --worker`` is the engine worker the
GUI starts from this same executable, ``featherweight --self-test`` checks the bundle, and
``featherweight COMMAND ...`` is the command line (``engine.cli``).
"""

import sys

from gui.launcher import main

if __name__ == "__main__":
    sys.exit(main())
