"""`dreamer serve`: dreams over HTTP, streamed frame by frame, and the studio page that watches them.

    app.py       the FastAPI app: the API's routes and its error replies
    dreams.py    the dream queue: a thread a worker dreaming its batches, encoders storing the files
    workers.py   where batches dream: here (dreamer.dream(), the batched engine) and what a worker gives back
    remote.py    --cluster: the batches on Ray actors, frames streamed back, files checked, dead workers replaced
    responses.py a stored file served from the file the store opened as it checked it
    limits.py    the server's bounds: upload bytes and pixels, sizes, steps, queue places; photos checked
    store.py     finished dreams on disk by render key (verified, least recently used evicted); the journal
    inputs.py    a served photo added to the gallery's inputs/ (a build then reuses the dream from the store)
    security.py  the ASGI guard: Host header, event streams' Origin, token, body size, security headers
    studio.py    the studio page and its static files
    schema.py    the API's JSON shapes (for /openapi.json)

The command itself (binding, the token, the URL) is dreamer/commands/serve.py.
"""
