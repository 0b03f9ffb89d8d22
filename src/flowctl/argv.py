"""The global options, known before anything heavy loads (no imports): accepted anywhere on the
line (flowctl.cli moves them to the front); the root command declares each (flowctl.cli.app).
"""

# The ones taking a value, and the flags.
OUTPUT = ("-o", "--output")
VALUED = frozenset({*OUTPUT, "--profile", "--config", "--address", "--namespace"})
FLAGS = frozenset({"--no-color", "--debug", "--version"})
NOTE = "Global options (-o, --address, --namespace, --profile, --config, --no-color, --debug) may go anywhere."


def output_format(args: list[str]) -> str:
    """The format `-o`/`--output` asks for among `args` (the last one given), else text."""
    chosen = "text"
    for i, arg in enumerate(args):
        if arg in OUTPUT and i + 1 < len(args):
            chosen = args[i + 1]
        elif arg.startswith("--output="):
            chosen = arg.split("=", 1)[1]
    return chosen if chosen in ("text", "json", "jsonl") else "text"
