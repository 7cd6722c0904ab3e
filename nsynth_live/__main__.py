import sys

from nsynth_live.cli import main

sys.exit(main())
