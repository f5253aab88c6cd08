"""`python -m webhook` is the `tenant-guard` command."""

from webhook.server.cli import main

raise SystemExit(main())
