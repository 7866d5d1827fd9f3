import sys

from mprviewer.cli import main

sys.exit(main())
