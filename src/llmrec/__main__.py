"""`python -m llmrec` is the `llmrec` command."""

from llmrec.cli.main import entry

entry()
