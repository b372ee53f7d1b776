"""`ryla`, the command line: one subcommand per generation route and the store, run,
sheet and score commands, all through ui.client.RylaClient. Entry point: ui.cli.main."""
