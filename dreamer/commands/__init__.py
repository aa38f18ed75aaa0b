"""The `dreamer` commands that stand on their own, one module each: `build` (a gallery's site) and `init` (a new
gallery); dreamer.cli wires them in beside render, styles, layers, train and fetch."""
