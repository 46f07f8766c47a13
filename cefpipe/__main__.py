from cefpipe.cli import main
import sys

sys.exit(main())
