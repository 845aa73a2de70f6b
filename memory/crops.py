"""The best face crops of each node: an in-memory ranking over the crops table."""

from __future__ import annotations

from collections.abc import Collection

from .store import Store


class CropShelf:
    def __init__(self, store: Store, per_node: int) -> None:
        self._store = store
        self.per_node = per_node
        self._by_node: dict[int, list[tuple[float, int, int]]] = {}  # node -> [(quality, crop id, track id)], best first
        for crop_id, node_id, track_id, quality in store.crop_index():
            self._by_node.setdefault(node_id, []).append((quality, crop_id, track_id))
        for shelf in self._by_node.values():
            shelf.sort(reverse=True)

    def offer(self, node_id: int, track_id: int, quality: float, jpeg: bytes) -> None:
        shelf = self._by_node.setdefault(node_id, [])
        if self.per_node == 0 or (len(shelf) >= self.per_node and quality <= shelf[-1][0]):
            return
        shelf.append((quality, self._store.add_crop(node_id, track_id, quality, jpeg), track_id))
        self._settle(node_id)

    def move(self, old: int, new: int, track_ids: Collection[int] | None = None) -> None:
        """Crops of `old` (only those of track_ids, if given) now belong to `new`."""
        shelf = self._by_node.get(old, [])
        moving = [c for c in shelf if track_ids is None or c[2] in track_ids]
        if not moving:
            return
        self._by_node[old] = [c for c in shelf if c not in moving]
        self._store.move_crops([c[1] for c in moving], new)
        self._by_node.setdefault(new, []).extend(moving)
        self._settle(new)

    def forget(self, node_ids: Collection[int]) -> None:
        """The shelves of forgotten nodes (memory.forget); their rows are already deleted."""
        for node_id in node_ids:
            self._by_node.pop(node_id, None)

    def jpegs(self, node_id: int) -> list[bytes]:
        return self._store.crop_jpegs([c[1] for c in self._by_node.get(node_id, [])])

    def _settle(self, node_id: int) -> None:
        shelf = sorted(self._by_node[node_id], reverse=True)
        self._by_node[node_id] = shelf[: self.per_node]
        if len(shelf) > self.per_node:
            self._store.delete_crops([c[1] for c in shelf[self.per_node :]])
