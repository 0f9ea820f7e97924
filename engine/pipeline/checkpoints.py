"""Prefix checkpoints: a training prefix (the first k steps of a recipe) trained once serves
every later recipe that starts with the same k steps.

``PrefixCache(folder, identity)``: ``identity`` names what the prefix is trained from (the
model and data fingerprint ``Prepared.cache_key`` and the dataset split); ``key(seed,
batch_size, steps)`` is sha256 of that identity, the recipe seed, the batch size and the
canonical JSON of the steps. Entries live

- in memory (the last ``MEMORY_ENTRIES`` models; handed out as fresh copies, since training
  changes a model in place), and
- on disk, ``folder/<key>/``: ``model.keras`` (saved with the Keras 2 API) and ``entry.json``
  (``{"format", "key", "steps", "done", "steps_info"}``), written into a temporary folder
  and renamed into place, so another process (another trial runner on the same study
  folder) either sees a whole entry or none. A damaged or unreadable entry is a miss.

Saving is best-effort: a model that cannot be saved and loaded back (custom layers, tfmot
wrappers) is simply not cached. Hits and misses are counted (``hits``, ``misses``).
Steps whose result is not a plain Keras model (QAT) are never cached: callers stop the
prefix before them (``CACHEABLE`` lists the cacheable step types).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections import OrderedDict
from pathlib import Path
from typing import Any

CHECKPOINT_FORMAT = 1
MEMORY_ENTRIES = 4
ENTRY_FILE = "entry.json"
MODEL_FILE = "model.keras"
CACHEABLE = ("distill", "prune_filters", "prune", "cluster", "finetune")


def identity_of(prepared: Any) -> str:
    """What a prefix is trained from: the baseline cache key (model, data, split, versions)
    or, when the inputs could not be fingerprinted, a hash of the model's weights and the
    split description."""
    if getattr(prepared, "cache_key", None):
        return f"{prepared.cache_key}:{json.dumps(prepared.split.to_dict(), sort_keys=True)}"
    h = hashlib.sha256()
    for w in prepared.loaded.model.get_weights():
        h.update(w.tobytes())
    h.update(json.dumps(prepared.splits.describe(), sort_keys=True, default=str).encode())
    return "weights:" + h.hexdigest()


class PrefixCache:
    """Memory + disk cache of trained prefixes (see the module docstring)."""

    def __init__(self, folder: str | Path | None, identity: str) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.identity = identity
        self.hits = 0
        self.misses = 0
        self._memory: OrderedDict[str, tuple[Any, dict[str, Any]]] = OrderedDict()

    def key(self, seed: int, batch_size: int, steps: list[dict[str, Any]]) -> str:
        doc = {
            "format": CHECKPOINT_FORMAT,
            "identity": self.identity,
            "seed": int(seed),
            "batch_size": int(batch_size),
            "steps": steps,
        }
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def counts(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses}

    # ------------------------------------------------------------------ lookup
    def longest(
        self, seed: int, batch_size: int, steps: list[dict[str, Any]]
    ) -> tuple[int, Any, dict[str, Any]] | None:
        """The longest cached prefix of ``steps``: ``(k, model copy, entry)`` or None. Counts
        one hit (found) or one miss (nothing cached, while a cacheable first step exists)."""
        n = 0
        while n < len(steps) and steps[n]["type"] in CACHEABLE:
            n += 1
        for k in range(n, 0, -1):
            found = self.get(self.key(seed, batch_size, steps[:k]))
            if found is not None:
                self.hits += 1
                return (k, *found)
        if n:
            self.misses += 1
        return None

    def get(self, key: str) -> tuple[Any, dict[str, Any]] | None:
        """``(model copy, entry)`` for ``key`` or None; memory first, then disk."""
        from engine.techniques.training import fresh_copy

        if key in self._memory:
            self._memory.move_to_end(key)
            model, entry = self._memory[key]
            return fresh_copy(model), json.loads(json.dumps(entry))
        if self.folder is None:
            return None
        folder = self.folder / key
        try:
            entry = json.loads((folder / ENTRY_FILE).read_text(encoding="utf-8"))
            if entry.get("format") != CHECKPOINT_FORMAT or entry.get("key") != key:
                return None
            from engine.core.tfenv import keras2

            model = keras2().models.load_model(folder / MODEL_FILE, compile=False)
        except Exception:  # noqa: BLE001 - a damaged or foreign entry is a miss
            return None
        self._remember(key, model, entry)
        return fresh_copy(model), json.loads(json.dumps(entry))

    # ------------------------------------------------------------------ store
    def put(
        self,
        seed: int,
        batch_size: int,
        steps: list[dict[str, Any]],
        model: Any,
        done: list[str],
        steps_info: list[dict[str, Any]],
    ) -> bool:
        """Store the model trained by ``steps`` (all cacheable); True when it was written."""
        if not steps or any(s["type"] not in CACHEABLE for s in steps):
            return False
        from engine.techniques.training import fresh_copy

        key = self.key(seed, batch_size, steps)
        entry = {
            "format": CHECKPOINT_FORMAT,
            "key": key,
            "steps": steps,
            "done": sorted(done),
            "steps_info": steps_info,
        }
        entry = json.loads(json.dumps(entry, default=_plain))
        try:
            self._remember(key, fresh_copy(model), entry)
        except Exception:  # noqa: BLE001 - caching only saves time
            return False
        if self.folder is None or (self.folder / key / ENTRY_FILE).exists():
            return True
        tmp = self.folder / f".tmp-{key[:16]}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir(parents=True)
            model.save(tmp / MODEL_FILE)
            (tmp / ENTRY_FILE).write_text(json.dumps(entry, indent=1), encoding="utf-8")
            try:
                os.rename(tmp, self.folder / key)
            except OSError:  # another process wrote the same entry first
                pass
        except Exception:  # noqa: BLE001 - a model that cannot be saved is not cached
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return True

    def _remember(self, key: str, model: Any, entry: dict[str, Any]) -> None:
        self._memory[key] = (model, entry)
        self._memory.move_to_end(key)
        while len(self._memory) > MEMORY_ENTRIES:
            self._memory.popitem(last=False)


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars and other odd values in step info."""
    try:
        return value.item()
    except AttributeError:
        return str(value)
