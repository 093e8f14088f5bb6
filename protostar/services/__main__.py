import sys

from protostar.services.cli import main

sys.exit(main())
