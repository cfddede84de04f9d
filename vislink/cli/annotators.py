"""`vislink annotator ...`: accounts of the people who annotate links (bcrypt-hashed passwords)."""

from __future__ import annotations

from typing import Optional

import typer

annotator_app = typer.Typer(help="Annotator accounts (who edits groups and links; sign-in for the UI).",
                            no_args_is_help=True)


@annotator_app.command("add")
def add(
    name: str = typer.Argument(..., help="Account name (letters, digits, . _ @ -)."),
    password: bool = typer.Option(False, "--password", help="Ask for a password (typed twice, not echoed)."),
    display_name: Optional[str] = typer.Option(None, "--display-name", help="Name shown in the UI."),
    email: Optional[str] = typer.Option(None, "--email", help="Contact address."),
) -> None:
    """Create an annotator account; without --password it cannot sign in with a password."""
    from vislink.graph.annotators import create_annotator
    from vislink.config import get_settings
    from vislink.store import session_scope

    secret = typer.prompt("password", hide_input=True, confirmation_prompt=True) if password else None
    with session_scope(get_settings().database_url) as session:
        annotator = create_annotator(session, name, secret, display_name=display_name, email=email)
        typer.echo(f"annotator {annotator.name} created (id {annotator.id})" + (" with a password" if secret else ""))


@annotator_app.command("passwd")
def passwd(name: str = typer.Argument(..., help="Account name.")) -> None:
    """Set or change an annotator's password."""
    from vislink.graph.annotators import set_password
    from vislink.config import get_settings
    from vislink.store import session_scope

    secret = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    with session_scope(get_settings().database_url) as session:
        set_password(session, name, secret)
    typer.echo(f"password of {name} changed")


@annotator_app.command("list")
def list_cmd() -> None:
    """All annotator accounts."""
    from vislink.graph.annotators import list_annotators
    from vislink.config import get_settings
    from vislink.store import session_scope

    with session_scope(get_settings().database_url) as session:
        annotators = list_annotators(session)
        for a in annotators:
            flags = ("password" if a.password_hash else "no password") + ("" if a.is_active else ", inactive")
            typer.echo(f"{a.id:5}  {a.name:24} {a.display_name or '':24} {flags}")
        typer.echo(f"{len(annotators)} annotators")


def register(app: typer.Typer) -> None:
    app.add_typer(annotator_app, name="annotator")
