import sys

from oee.cli import main

sys.exit(main())
