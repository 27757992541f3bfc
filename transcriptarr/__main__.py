import sys

from transcriptarr.cli import main

sys.exit(main())
