#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

from __future__ import annotations

import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["services"]:
        # The launcher runs before settings can load: settings read the URLs it writes.
        from protostar.services.cli import main as services_main

        sys.exit(services_main(sys.argv[2:]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "protostar.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
