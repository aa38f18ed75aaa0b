"""A finished dream's file served from the file object the store opened as it checked it: evicted or dropped
afterwards, the file is still read whole (the kernel keeps an open file's bytes), never a missing path."""

import contextlib
import os

import anyio
from fastapi.responses import FileResponse


class OpenedFile(FileResponse):
    """A FileResponse (Range requests included) of `file`, a binary file already open; closed once answered."""

    def __init__(self, file, media_type: str):
        self.file = file
        super().__init__(file.name, media_type=media_type, stat_result=os.fstat(file.fileno()))

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.file.close()

    @contextlib.asynccontextmanager
    async def _open_file(self):  # Starlette opens self.path here: read the open file instead
        self.file.seek(0)
        yield anyio.wrap_file(self.file)
