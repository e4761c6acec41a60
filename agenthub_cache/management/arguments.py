"""What ``cache_namespaces`` accepts: one subparser per subcommand, each with its help.

Under ``call_command()`` the option values arrive without argparse's checks (Django merges
keyword arguments after parsing), so the command validates ``--format`` and ``--limit`` again.
"""

from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand, CommandParser, DjangoHelpFormatter

FORMATS = ("table", "json")
DEFAULT_LIMIT = 100


class _DjangoOptions(BaseCommand):
    """Django's own options (``--verbosity``, ``--settings``, ...), exactly as ``BaseCommand``
    declares them, so that each subcommand accepts them after its name too
    (``flush signup --no-input -v 0``)."""

    suppressed_base_arguments = {"--version"}


def django_options() -> CommandParser:
    """A parent parser holding Django's own options, their defaults suppressed, so that values
    given before the subcommand stand."""
    parser = _DjangoOptions().create_parser("manage.py", "cache_namespaces", add_help=False)
    for action in parser._actions:  # argparse's list of options, as call_command() reads it
        action.default = argparse.SUPPRESS
    return parser


def limit(text: str) -> int:
    """``--limit``: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def add_subcommands(parser: CommandParser) -> None:
    # CommandParser.add_subparsers() hands ``called_from_command_line`` to every subparser
    # (Django >= 5.1): a mistake prints usage on the command line and raises CommandError
    # under call_command().
    sub = parser.add_subparsers(
        dest="subcommand",
        required=True,
        metavar="SUBCOMMAND",
        title="subcommands",
        help="Run 'cache_namespaces SUBCOMMAND --help' for the options of each.",
    )
    listing = subcommand(
        sub,
        "list",
        "Show every configured namespace: CACHES alias, backend, provider, default TTL, "
        "entries (n/a where the store cannot count), how indexes and flush work.",
    )
    add_format(listing)

    stats = subcommand(
        sub, "stats", "Show one namespace's entries, indexes, memory and capabilities."
    )
    add_name(stats)

    keys = subcommand(sub, "keys", "List the keys of a namespace, without any prefix.")
    add_name(keys)
    keys.add_argument(
        "--pattern",
        default="*",
        metavar="GLOB",
        help="Only keys matching this glob over the key alone (* ? [abc]); default: all.",
    )
    keys.add_argument(
        "--limit",
        type=limit,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"Show at most N keys (default {DEFAULT_LIMIT}; 0 shows every key).",
    )

    get = subcommand(sub, "get", "Show one entry's value and its remaining TTL.")
    add_name(get)
    get.add_argument("key", metavar="KEY", help="The key, as the application sets it.")
    get.add_argument(
        "--show-values",
        action="store_true",
        help="Print the value even if the namespace is SENSITIVE in settings.",
    )

    delete = subcommand(sub, "delete", "Delete entries (and their index filings).")
    add_name(delete)
    delete.add_argument("keys", nargs="+", metavar="KEY", help="The keys to delete.")

    find = subcommand(sub, "find", "List the keys filed under INDEX = VALUE.")
    add_name(find)
    find.add_argument("index", metavar="INDEX", help="The index name, e.g. user_id.")
    find.add_argument("value", metavar="VALUE", help="The index value, matched exactly.")

    prune = subcommand(
        sub, "prune", "Reclaim index members whose entries expired, went or were re-filed."
    )
    add_name(prune)

    flush = subcommand(
        sub,
        "flush",
        "Drop every entry and index of the named namespaces, and nothing else. Asks for "
        "confirmation unless --noinput; refuses when there is no terminal to ask on.",
    )
    flush.add_argument("names", nargs="*", metavar="NAME", help="The namespaces to flush.")
    flush.add_argument(
        "--all", action="store_true", help="Flush every namespace configured in settings."
    )
    flush.add_argument(
        "--dry-run",
        action="store_true",
        help="Show how many entries would go, with a few sample keys; change nothing.",
    )
    flush.add_argument(
        "--noinput",
        "--no-input",
        action="store_false",
        dest="interactive",
        help="Do NOT prompt the user for input of any kind.",
    )
    add_cache(flush)
    add_format(flush)


def subcommand(
    sub: argparse._SubParsersAction[CommandParser], name: str, help: str
) -> CommandParser:
    base = django_options()
    parser: CommandParser = sub.add_parser(
        name, help=help, description=help, formatter_class=DjangoHelpFormatter, parents=[base]
    )
    return parser


def add_name(parser: CommandParser) -> None:
    parser.add_argument("name", metavar="NAME", help="The namespace, e.g. signup.")
    add_cache(parser)
    add_format(parser)


def add_cache(parser: CommandParser) -> None:
    parser.add_argument(
        "--cache",
        metavar="ALIAS",
        help="Reach the namespace on this CACHES alias, even if settings do not declare it.",
    )


def add_format(parser: CommandParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default, for people) or json (a stable shape, for scripts).",
    )
