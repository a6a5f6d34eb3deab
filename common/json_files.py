"""The JSON files the programs keep beside their outputs (config.json, best.json, manifests,
model.json): read with a clear error, written whole or not at all."""

import json
import os

from common.cli import UsageError


def read_json(path):
    """The JSON in ``path``, or None when there is no such file; UsageError when unreadable."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"{path} cannot be read ({e}); restore it, or use another "
                         "--log-dir") from None


def write_json(path, data):
    """Write ``data`` to ``path`` through a temporary file, so a reader never sees half of it."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)
