"""Entry point of the standalone terraseg desktop app (PyInstaller builds this file)."""

import sys

from terraseg.gui import main

if __name__ == "__main__":
    sys.exit(main())
