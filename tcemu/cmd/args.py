"""Reading an ``ip``/``tc`` command line: words, the argument cursor and the error type.

Mirrors the helpers every iproute2 parser shares (``lib/utils.c``, ``include/utils.h``):
``matches()`` (a word may be any non-empty prefix of a keyword), ``NEXT_ARG()`` (a keyword
whose value is missing ends with *Command line is not complete*), and the message
builders ``invarg``/``duparg``/``duparg2``/``missarg``.  The words of the line are split
as a POSIX shell splits them (quotes group, so ``bytecode '1,6 0 0 0'`` is two words).

Errors are :class:`CommandError`; its text is the line ``ip``/``tc`` print on stderr for
the same mistake (the first line, without the usage text that may follow), so a pasted
command fails in tcemu with the message the user knows.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from tcemu.errors import TcemuError

__all__ = [
    "Args",
    "CommandError",
    "UnsupportedCommandError",
    "duparg",
    "duparg2",
    "invarg",
    "matches",
    "split_words",
]


class CommandError(TcemuError):
    """An ``ip`` or ``tc`` command line iproute2 would refuse.

    ``str(err)`` is what iproute2 prints (``Error: argument "foo" is wrong: ...``): this
    deliberately follows iproute2's wording rather than tcemu's "verb object: cause"
    style, so a pasted command fails the way the user expects.  ``tool`` is ``"ip"`` or
    ``"tc"``, ``words`` the split command line and ``index`` the word at fault (or None).
    """

    def __init__(self, message: str, *, tool: str = "", words: Sequence[str] = (),
                 index: int | None = None) -> None:
        self.message = message
        self.tool = tool
        self.words = tuple(words)
        self.index = index
        super().__init__(message)


class UnsupportedCommandError(CommandError):
    """A well-formed command (or option) that tcemu does not model."""


def split_words(line: str | Sequence[str]) -> list[str]:
    """The words of a command line as a POSIX shell splits them (quotes group words)."""
    if not isinstance(line, str):
        return [str(word) for word in line]
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError as err:  # unbalanced quotes
        raise CommandError(f"Error: cannot split the command line: {err}") from err


def matches(word: str, keyword: str) -> bool:
    """iproute2 ``matches()``: ``word`` is a non-empty prefix of ``keyword``."""
    return bool(word) and keyword.startswith(word)


def invarg(msg: str, arg: str) -> str:
    return f'Error: argument "{arg}" is wrong: {msg}'


def duparg(key: str, arg: str) -> str:
    return f'Error: duplicate "{key}": "{arg}" is the second value.'


def duparg2(key: str, arg: str) -> str:
    return f'Error: either "{key}" is duplicate, or "{arg}" is a garbage.'


INCOMPLETE = 'Command line is not complete. Try option "help"'


class Args:
    """A cursor over the words of one command (iproute2's ``argc``/``argv`` pair)."""

    def __init__(self, words: Sequence[str], *, tool: str, pos: int = 0) -> None:
        self.words = list(words)
        self.tool = tool
        self.pos = pos

    # -- position ------------------------------------------------------------------
    def __bool__(self) -> bool:
        return self.pos < len(self.words)

    @property
    def cur(self) -> str:
        """The current word (iproute2's ``*argv``)."""
        if self.pos >= len(self.words):
            raise self.error(INCOMPLETE)
        return self.words[self.pos]

    def peek(self, ahead: int = 1) -> str | None:
        at = self.pos + ahead
        return self.words[at] if at < len(self.words) else None

    def advance(self) -> None:
        """``argc--, argv++`` (``NEXT_ARG_FWD``)."""
        self.pos += 1

    def next_arg(self) -> str:
        """``NEXT_ARG()``: move to the value of the current keyword and return it."""
        self.pos += 1
        if self.pos >= len(self.words):
            raise self.error(INCOMPLETE, at=len(self.words) - 1)
        return self.words[self.pos]

    def take(self) -> str:
        """Return the current word and move past it."""
        word = self.cur
        self.pos += 1
        return word

    def rest(self) -> list[str]:
        return self.words[self.pos:]

    # -- errors --------------------------------------------------------------------
    def error(self, message: str, *, at: int | None = None) -> CommandError:
        where = self.pos if at is None else at
        return CommandError(message, tool=self.tool, words=self.words,
                            index=min(where, len(self.words) - 1) if self.words else None)

    def unsupported(self, message: str) -> UnsupportedCommandError:
        return UnsupportedCommandError(message, tool=self.tool, words=self.words,
                                       index=self.pos if self else None)
