import sys

from bench.demo.generate import main

sys.exit(main())
