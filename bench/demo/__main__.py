"""``python -m bench.demo [ROOT] [--seed N] [--ood]``: build a demo split."""

import sys

from bench.demo.generate import main

sys.exit(main())
