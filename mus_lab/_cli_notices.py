"""``mus-lab notices``: subscribe to availability notices, list them, send a test, deliver.

The owner's token is read from ``--token-file`` (``subscribe`` creates the file, mode 0600,
with a new token when it does not exist) or from ``MUS_LAB_NOTICES_TOKEN``; a webhook's
signing secret likewise from ``--secret-file``. Neither is ever printed. SMTP settings come
from ``MUS_LAB_SMTP_HOST``, ``MUS_LAB_SMTP_PORT``, ``MUS_LAB_SMTP_SENDER``, ... (see
:meth:`mus_lab.services.notices.SmtpSettings.from_env`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer

from mus_lab._cli_common import BboxOpt, command_doc, csv_list, fail, reporting_errors
from mus_lab.errors import NoticeError

__all__ = ["NotifyOpt", "notices_app", "notifying"]

notices_app = typer.Typer(
    help="Availability notices: e-mail, signed webhook or Atom feed when new items cover an area.",
    no_args_is_help=True,
)

DbArg = Annotated[str, typer.Argument(help="Holdings database: postgresql://USER@HOST:PORT/DB.")]
TokenFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="File holding the owner's token (else MUS_LAB_NOTICES_TOKEN); subscribe creates it.",
    ),
]
NotifyOpt = Annotated[
    str | None,
    typer.Option(
        "--notify",
        help="Send availability notices for the new items (postgresql:// URL of the "
        "database holding the subscriptions).",
    ),
]
_ENV = "MUS_LAB_NOTICES_TOKEN"


def notifying(db_url: str | None) -> contextlib.AbstractContextManager[Any]:
    """A block during which new items send notices (``--notify``), or nothing without a URL.

    Parameters
    ----------
    db_url
        The ``--notify`` option.

    Returns
    -------
    context manager
        An attached :class:`~mus_lab.services.notices.Notifier`, or a no-op.
    """
    if not db_url:
        return contextlib.nullcontext()
    from mus_lab.services.notices import Notifier

    return Notifier(db_url)


def _write_private(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")


def _read_or_create(path: Path | None, *, create: bool, what: str) -> tuple[str | None, bool]:
    """The secret in ``path`` (or the environment for the token); create it when asked."""
    if path is None:
        value = os.environ.get(_ENV) if what == "token" else None
        return (value.strip() if value else None), False
    path = path.expanduser()
    if path.is_file():
        value = path.read_text().strip()
        if not value:
            raise NoticeError(f"The {what} file {path} is empty: delete it to get a new {what}.")
        return value, False
    if not create:
        raise NoticeError(f"No {what} file {path}: give the file `notices subscribe` created.")
    value = secrets.token_urlsafe(32)
    _write_private(path, value)
    return value, True


def _token(path: Path | None) -> str:
    value, _ = _read_or_create(path, create=False, what="token")
    if not value:
        raise NoticeError(
            f"Managing subscriptions needs the owner's token: pass --token-file FILE or set {_ENV}."
        )
    return value


@notices_app.command("subscribe")
@command_doc("db, bbox, collection, filter, email, webhook, secret_file, atom, token_file")
def subscribe_cmd(
    db: DbArg,
    bbox: BboxOpt = None,
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="Comma-separated collection ids.")
    ] = None,
    filter: Annotated[
        str | None, typer.Option(help="CQL2 text filter, e.g. 'eo:cloud_cover < 20'.")
    ] = None,
    email: Annotated[str | None, typer.Option(help="Send e-mails to this address.")] = None,
    webhook: Annotated[str | None, typer.Option(help="POST signed JSON to this URL.")] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(help="Webhook signing secret file (created, mode 0600, when missing)."),
    ] = None,
    atom: Annotated[Path | None, typer.Option(help="Write an Atom feed to this file.")] = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Subscribe to notices of new items over an area (one channel: e-mail, webhook or Atom)."""
    from mus_lab.services import notices

    if not bbox:
        fail("Give the area of interest: --bbox min_lon,min_lat,max_lon,max_lat.")
    if webhook and secret_file is None:
        fail("A webhook needs --secret-file FILE (created with a new secret when missing).")
    if token_file is None and not os.environ.get(_ENV):
        fail(f"Give --token-file FILE (created with a new token when missing) or set {_ENV}.")
    with reporting_errors():
        token, new_token = _read_or_create(token_file, create=True, what="token")
        secret, new_secret = (
            _read_or_create(secret_file, create=True, what="secret") if webhook else (None, False)
        )
        sub = notices.subscribe(
            db,
            bbox=bbox,
            collections=csv_list(collection) or None,
            filter=filter,
            email=email,
            webhook=webhook,
            secret=secret,
            atom=atom,
            token=token,
        )
    typer.echo(f"Subscription {sub.describe()}")
    _echo_feed(sub)
    if new_token:
        typer.echo(f"A new owner token was written to {token_file} (keep it private).")
    if new_secret:
        typer.echo(f"A new webhook secret was written to {secret_file} (give it to the receiver).")


@notices_app.command("list")
@command_doc("db, token_file")
def list_cmd(db: DbArg, token_file: TokenFileOpt = None) -> None:
    """List the subscriptions of the token's owner."""
    from mus_lab.services import notices

    with reporting_errors():
        subs = notices.subscriptions(db, token=_token(token_file))
    if not subs:
        typer.echo("No subscription for this token.")
    for sub in subs:
        typer.echo(sub.describe())
        _echo_feed(sub)


def _echo_feed(sub: Any) -> None:
    """Where the STAC API serves an Atom subscription's feed (its id: for the owner only)."""
    if sub.channel == "atom" and sub.feed_id:
        path = sub.feed_id.join(("/notices/feeds/", ""))
        typer.echo(f"  Atom feed over HTTP: STAC_API_URL{path} (share it only with its readers)")


@notices_app.command("test")
@command_doc("db, subscription, token_file")
def send_test_cmd(
    db: DbArg,
    subscription: Annotated[int, typer.Argument(help="Subscription number (see `list`).")],
    token_file: TokenFileOpt = None,
) -> None:
    """Send a test notice through a subscription's channel."""
    from mus_lab.services import notices

    with reporting_errors():
        notices.send_test(db, subscription, token=_token(token_file))
    typer.echo(f"Test notice of subscription {subscription} sent.")


@notices_app.command("unsubscribe")
@command_doc("db, subscription, token_file")
def unsubscribe_cmd(
    db: DbArg,
    subscription: Annotated[int, typer.Argument(help="Subscription number (see `list`).")],
    token_file: TokenFileOpt = None,
) -> None:
    """Remove a subscription and its notices."""
    from mus_lab.services import notices

    with reporting_errors():
        notices.unsubscribe(db, subscription, token=_token(token_file))
    typer.echo(f"Subscription {subscription} removed.")


@notices_app.command("deliver")
@command_doc("db, wait")
def deliver_cmd(
    db: DbArg,
    wait: Annotated[
        bool, typer.Option(help="Wait for retries of failed sends (up to 30 s).")
    ] = False,
) -> None:
    """Send the pending notices that are due (retries after failures; run it from cron)."""
    from mus_lab.services import notices

    with reporting_errors():
        report = notices.Notifier(db).deliver(wait=wait)
    typer.echo(
        f"{report.sent} sent, {report.retried} to retry, {report.failed} given up, "
        f"{report.pending} pending"
    )
