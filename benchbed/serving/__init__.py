"""Serving: the same runners behind a real HTTP server (``--scenario http``), services benchbed did
not start as runners (``--endpoint``), and the open-loop client that drives both over sockets.

- `codec`: the JSON form of a runner's outputs (tensors tagged with dtype and shape).
- `host`: building a runner inside a server process (uvicorn worker or Ray Serve replica).
- `app`: the ASGI app of a uvicorn worker; `server`: the process that owns it, always stopped.
- `ray_serve`: the same runner as a Ray Serve application with N replicas.
- `client`: open-loop Poisson requests over loopback sockets (aiohttp), and single calls.
- `protocols`: how a request and its answer look for each kind of service (plug-ins).
"""
