"""`scrutiny-bot i18n`: extract the strings, update the catalogues, check them."""

from __future__ import annotations

import typer

from bot.cli.output import echo
from bot.i18n import _, ngettext

i18n_cli = typer.Typer(
    help=_("Translations: extract the strings, update the catalogues, check them."),
    no_args_is_help=True,
)


@i18n_cli.command("extract")
def i18n_extract() -> None:
    """Write locale/messages.pot from the strings in the code and templates."""
    from bot.catalogue import LOCALE_DIR, TEMPLATE_FILE, extract, write_template

    catalog = extract()
    changed = write_template(catalog)
    count = sum(1 for message in catalog if message.id)
    message = (
        _("{file}: {count} strings, updated.")
        if changed
        else _("{file}: {count} strings, unchanged.")
    )
    echo(message.format(file=LOCALE_DIR / TEMPLATE_FILE, count=count))


@i18n_cli.command("update")
def i18n_update() -> None:
    """Merge locale/messages.pot into each language's catalogue, keeping the translations."""
    from dataclasses import asdict

    from bot.catalogue import LOCALE_DIR, TEMPLATE_FILE, TRANSLATED, update

    if not (LOCALE_DIR / TEMPLATE_FILE).exists():
        echo(_("There is no template yet: run `scrutiny-bot i18n extract` first."), err=True)
        raise typer.Exit(1)
    for language in TRANSLATED:
        summary = update(language)
        message = _(
            "{path}: {total} strings; {added} new, {dropped} dropped, {fuzzy} fuzzy, "
            "{untranslated} to translate."
        )
        echo(message.format(**asdict(summary)))


@i18n_cli.command("check")
def i18n_check() -> None:
    """Fail (status 1) when a catalogue is missing, stale, untranslated or fuzzy anywhere."""
    from bot.catalogue import check

    problems = check()
    for problem in problems:
        echo(str(problem), err=True)
    if problems:
        echo(
            ngettext(
                "{count} translation problem. Run `scrutiny-bot i18n extract`, then "
                "`scrutiny-bot i18n update`, and translate what is listed.",
                "{count} translation problems. Run `scrutiny-bot i18n extract`, then "
                "`scrutiny-bot i18n update`, and translate what is listed.",
                len(problems),
            ).format(count=len(problems)),
            err=True,
        )
        raise typer.Exit(1)
    echo(_("The translation catalogues match the code."))
