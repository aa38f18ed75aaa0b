"""The `dreamer` commands, one module a verb: HELP (its line in `dreamer --help`), arguments(parser) where it takes
any, and run(args) -> exit status. dreamer.cli wires them together."""
