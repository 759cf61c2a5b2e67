"""The `llmrec` command: parses, calls one library function, formats. No logic lives here."""

from __future__ import annotations

import logging

import typer

from llmrec.cli import compare, data, recommend, run, serve
from llmrec.errors import LlmrecError

app = typer.Typer(
    help="Sequential recommendation with LLMs and strong baselines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.command("train")(run.train)
app.command("evaluate")(run.evaluate)
app.command("run")(run.run)
app.command("compare")(compare.compare)
app.command("recommend")(recommend.recommend)
app.command("serve")(serve.serve)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="log at INFO level")) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # bm25s sets its own logger to DEBUG; keep it at the level the user asked for.
    logging.getLogger("bm25s").setLevel(logging.INFO if verbose else logging.WARNING)


def entry() -> None:
    """Console entry point: library errors become one clear line and exit code 2."""
    try:
        app(standalone_mode=False)
    except LlmrecError as error:
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(2) from None
    except Exception as error:  # click's own usage errors keep their formatting
        import click

        if isinstance(error, click.ClickException):
            error.show()
            raise SystemExit(error.exit_code) from None
        raise
