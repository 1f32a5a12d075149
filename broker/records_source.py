"""The record data of a fetch response, as file regions rather than bytes.

:class:`FileRegions` is what a fetch handler puts in a ``records`` field: the generated
encoders write its length prefix from ``size`` and hand the object itself to the server
(``encode_parts``), which copies the regions straight from the segment files into one buffer
with ``os.preadv`` and writes it to the socket (see ``server.read_record_source``). The record
bytes never become Python objects on the way.
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
