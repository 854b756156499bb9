"""`python -m bridge` is the same as the `channel-bridge` command."""

from bridge.cli import main

raise SystemExit(main())
