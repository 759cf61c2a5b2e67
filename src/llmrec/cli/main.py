"""The `llmrec` command: parses, calls one library function, formats. No logic lives here.

`entry` is the CLI's one error boundary: a usage error or an `LlmrecError` (bad config, data or
model folder) is one line on stderr and exit status 2; any other failure is one line and
status 1. The traceback is shown only with `llmrec --debug ...` or `LLMREC_DEBUG=1`.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import typer

from llmrec.cli import compare, data, recommend, run, serve
from llmrec.errors import LlmrecError

USAGE_STATUS = 2  # usage and input errors (click's convention for usage errors)
FAILURE_STATUS = 1  # runtime failures

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


@dataclass
class Session:
    """What `entry` needs to know after the command ended (click's `obj` of the root context)."""

    debug: bool = False


Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="log at INFO level")]
Debug = Annotated[
    bool,
    typer.Option("--debug", envvar="LLMREC_DEBUG", help="show the traceback of an error"),
]


@app.callback()
def main(ctx: typer.Context, verbose: Verbose = False, debug: Debug = False) -> None:
    if isinstance(ctx.obj, Session):
        ctx.obj.debug = debug
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # bm25s sets its own logger to DEBUG; keep it at the level the user asked for.
    logging.getLogger("bm25s").setLevel(logging.INFO if verbose else logging.WARNING)


def entry(args: Sequence[str] | None = None) -> None:
    """Console entry point: run the command, turn every error into one line and an exit status."""
    session = Session()
    try:
        status = app(args, prog_name="llmrec", standalone_mode=False, obj=session)
    except typer.TyperException as error:  # typer's bundled click: usage errors and the like
        _show_usage_error(error)
        status = USAGE_STATUS
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        status = FAILURE_STATUS
    except LlmrecError as error:
        status = _report(error, str(error), USAGE_STATUS, session.debug)
    except Exception as error:
        text = " ".join(str(error).split())  # one line, whatever the library wrote
        message = f"{type(error).__name__}: {text} (llmrec --debug ... shows the traceback)"
        status = _report(error, message, FAILURE_STATUS, session.debug)
    raise SystemExit(status if isinstance(status, int) else 0)


def _show_usage_error(error: typer.TyperException) -> None:
    context = getattr(error, "ctx", None)
    # `llmrec` or `llmrec data` alone: the help, which typer's rich formatting has already
    # printed when the error was made (typer's rich_utils tells this error by its name too).
    if type(error).__name__ == "NoArgsIsHelpError":
        if error.format_message():
            typer.echo(error.format_message(), err=True)
        return
    command = context.command_path if context is not None else "llmrec"
    typer.echo(f"error: {error.format_message()} (see '{command} --help')", err=True)


def _report(error: Exception, message: str, status: int, debug: bool) -> int:
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    typer.echo(f"error: {message}", err=True)
    return status
