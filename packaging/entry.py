"""Entry point of the frozen app: the same ``engine.cli.main`` as the ``featherweight`` script.

``featherweight`` opens the desktop app, ``featherweight --worker`` is the engine worker the
GUI starts from this same executable, ``featherweight --self-test`` checks the bundle.
"""

import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
