"""Make a standalone bench script a Django program: project root on ``sys.path``, settings module, ``setup()``.

Import this module before anything that touches Django. The servers are the ones described by
``PROTOSTAR_DATA_DIR`` (see ``manage.py services up``); settings overrides come from the environment as usual.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup() -> Path:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "protostar.settings")
    import django

    django.setup()
    return ROOT
