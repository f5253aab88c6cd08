"""`python -m webhook` is the `tenant-guard` command."""

from webhook.cli import main

raise SystemExit(main())
