"""Writing the programs' output files whole or not at all, and naming the file in the error when
the machine refuses a write (a full disk says "No space left on device" without a file name).

    with files.naming(path): ...                  # an OSError naming no file names ``path``
    with files.whole(path, "w") as f:             # PATH.tmp, put in place as PATH at the end
        f.write(text)
    with files.NewFiles(folder) as new:           # files that must not be there already:
        with new.add("a.png") as f: ...           # each under a temporary name meanwhile,
        new.commit()                              # then all put in place, none overwritten

A failure inside any of them (an exception, Ctrl-C) removes what was written under a temporary
name; the files that were there stay as they were.
"""

import contextlib
import errno
import os
import secrets

from common.cli import UsageError


@contextlib.contextmanager
def naming(path, temporary=None):
    """An OSError raised inside that names no file (a write to a full disk), or names the
    ``temporary`` file that stands for ``path`` meanwhile, is given ``path``, the file or
    folder being written, so that ``cli.run_main``'s line names it."""
    try:
        yield
    except OSError as e:
        if not e.filename or e.filename == temporary:
            e.filename = path
        raise


def _remove(path):
    with contextlib.suppress(OSError):
        os.remove(path)


@contextlib.contextmanager
def whole(path, mode="w", temporary=None, **open_args):
    """A file open for writing on ``temporary`` (default PATH.tmp), which replaces ``path``
    when the block ends; when the block or the write fails it is removed (``path`` is as it
    was) and an OSError that names no file names ``path``."""
    temporary = temporary or path + ".tmp"
    with naming(path, temporary):
        try:
            with open(temporary, mode, **open_args) as f:
                yield f
            os.replace(temporary, path)
        except BaseException:
            _remove(temporary)
            raise


class NewFiles:
    """Files added to ``folder`` together, none of them replacing a file there: ``add`` writes
    each under a temporary name (``.NAME.XXXXXXXX.tmp``, made with the permissions a new file
    gets), ``commit`` puts them all in place; leaving the ``with`` block by an exception (or
    ``discard``) removes the ones not in place."""

    def __init__(self, folder):
        self.folder = folder
        self.pending = []  # (temporary name, final name)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is not None:
            self.discard()

    @contextlib.contextmanager
    def add(self, name, mode="wb"):
        """A file open for writing that becomes FOLDER/NAME at ``commit``."""
        final = os.path.join(self.folder, name)
        temporary = os.path.join(self.folder, f".{name}.{secrets.token_hex(4)}.tmp")
        with naming(final, temporary):
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            self.pending.append((temporary, final))
            with os.fdopen(descriptor, mode) as f:
                yield f

    def commit(self):
        """Put every file in place; UsageError (the rest removed) for one whose name another
        program took meanwhile: nothing is overwritten."""
        while self.pending:
            temporary, final = self.pending[0]
            with naming(final, temporary):
                _place(temporary, final)
            self.pending.pop(0)

    def discard(self):
        for temporary, _ in self.pending:
            _remove(temporary)
        self.pending = []


def _place(temporary, final):
    """Rename ``temporary`` to ``final`` unless ``final`` exists (a hard link fails rather than
    replace it; where links cannot be made, the check and the rename are two steps)."""
    taken = UsageError(f"{final} was written by another program meanwhile; it is left as it is "
                       "(move it away, or give another folder)")
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise taken from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(final):
            raise taken from None
        os.rename(temporary, final)
        return
    os.remove(temporary)
