import sys

from cefpipe.cli import main

sys.exit(main())
