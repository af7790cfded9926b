from __future__ import annotations

import sys

from fraudflow.cli import main

sys.exit(main())
