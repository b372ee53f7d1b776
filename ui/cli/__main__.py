"""`python -m ui.cli`: the same as the `ryla` console script."""

from ui.cli.main import main

raise SystemExit(main())
