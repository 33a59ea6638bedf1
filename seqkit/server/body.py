"""An ASGI middleware that refuses a request body over a size before FastAPI reads and parses it."""

from __future__ import annotations

from fastapi.responses import JSONResponse


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is 413 before it is parsed. The line limits
    are checked on the parsed request, and FastAPI reads and parses a body of any size."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:  # the body, read here, up to the limit (a declared Content-Length or not)
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                error = (
                    f"a request body of more than {self.limit:,} bytes, more than --max-lines lines of "
                    "--max-chars characters can take; send fewer lines"
                )
                await JSONResponse({"error": error}, status_code=413)(scope, receive, send)
                return
        body: bytes | None = b"".join(chunks)

        async def replay() -> dict:
            nonlocal body
            if body is None:
                return await receive()  # (a disconnect, once the body is read)
            message, body = {"type": "http.request", "body": body, "more_body": False}, None
            return message

        await self.app(scope, replay, send)
