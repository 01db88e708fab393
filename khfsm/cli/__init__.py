"""The `khfsm` command line: one module per command, loaded lazily by `main`."""
