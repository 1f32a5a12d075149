"""The record data of a fetch response, as file regions rather than bytes.

:class:`FileRegions` is what a fetch handler puts in a ``records`` field: the generated
encoders write its length prefix from ``size`` and hand the object itself to the server
(``encode_parts``), which reads it chunk by chunk with :class:`RegionReader` (``os.preadv``
straight from the segment file into a buffer handed to the transport), only as fast as the
socket takes it. The record bytes never become Python objects, and a 50 MB fetch response
never occupies 50 MB of memory at once.
"""

from __future__ import annotations

import os


class FileRegions:
    """Consecutive regions (``file``, ``position``, ``length``) of segment files."""

    __slots__ = ("regions", "size")

    def __init__(self, regions):
        self.regions = list(regions)
        self.size = sum(region.length for region in self.regions)

    def read_into(self, view: memoryview) -> None:
        """Fill ``view`` (exactly ``size`` bytes) with the regions' bytes. Raises OSError on a
        short read (a segment truncated meanwhile): the response can then not be completed."""
        offset = 0
        for region in self.regions:
            target = view[offset:offset + region.length]
            fileno = getattr(region.file, "fileno", None)
            try:
                fd = fileno() if fileno is not None else None
            except (OSError, ValueError):
                fd = None
            if fd is None:  # the in-memory backend
                data = region.read()
                if len(data) != region.length:
                    raise OSError(f"short read: {len(data)} of {region.length} bytes")
                target[:] = data
            else:
                filled = 0
                while filled < region.length:
                    count = os.preadv(fd, [target[filled:]], region.position + filled)
                    if count <= 0:
                        raise OSError(f"short read: {filled} of {region.length} bytes")
                    filled += count
            offset += region.length

    def read_bytes(self) -> bytes:
        buffer = bytearray(self.size)
        self.read_into(memoryview(buffer))
        return bytes(buffer)

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"FileRegions({len(self.regions)} regions, {self.size} bytes)"


class RegionReader:
    """Reads a :class:`FileRegions` in chunks, front to back (the server's send cursor)."""

    __slots__ = ("_regions", "_index", "_offset")

    def __init__(self, source: FileRegions):
        self._regions = source.regions
        self._index = 0
        self._offset = 0  # bytes of the current region already read

    @property
    def done(self) -> bool:
        return self._index >= len(self._regions)

    def next_chunk(self, max_size: int) -> bytearray:
        """Up to ``max_size`` bytes from within the current region. Raises OSError on a short
        read (the region shrank: the response can then not be completed)."""
        region = self._regions[self._index]
        size = min(max_size, region.length - self._offset)
        buffer = bytearray(size)
        view = memoryview(buffer)
        position = region.position + self._offset
        fileno = getattr(region.file, "fileno", None)
        try:
            fd = fileno() if fileno is not None else None
        except (OSError, ValueError):
            fd = None
        if fd is None:  # the in-memory backend
            data = region.read()[self._offset:self._offset + size]
            if len(data) != size:
                raise OSError(f"short read: {len(data)} of {size} bytes")
            view[:] = data
        else:
            filled = 0
            while filled < size:
                count = os.preadv(fd, [view[filled:]], position + filled)
                if count <= 0:
                    raise OSError(f"short read: {filled} of {size} bytes")
                filled += count
        self._offset += size
        if self._offset >= region.length:
            self._index += 1
            self._offset = 0
        return buffer
