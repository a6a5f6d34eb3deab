"""The JSON files the programs keep beside their outputs (config.json, best.json, manifests,
model.json): read with a clear error, written whole or not at all."""

import json
import os

from common import files
from common.cli import UsageError


def read_json(path, fix="restore it, or use another --log-dir"):
    """The JSON in ``path``, or None when there is no such file; UsageError when unreadable,
    saying ``fix``: what the user can do."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"{path} cannot be read ({e}); {fix}") from None


def write_json(path, data):
    """Write ``data`` to ``path`` through a temporary file (PATH.tmp), so a reader never sees half
    of it; a failed write leaves ``path`` as it was, no temporary file, and an OSError naming
    ``path``."""
    with files.whole(path) as f:
        json.dump(data, f, indent=2)
