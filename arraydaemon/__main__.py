import sys

from arraydaemon.cli import main

sys.exit(main())
