import sys

from hiralign.cli import main

sys.exit(main())
