"""The browser front end: ``mprviewer serve`` (trame pages over the same scenes and models).

``launcher`` is the one process that listens: it checks the access token on every request
and websocket, starts one session process per browser tab and forwards that tab's HTTP and
websocket traffic to it. ``app`` is what runs inside a session process: a trame page whose
views are the ``mprviewer.render`` scenes, rendered on the server and streamed as images by
trame-rca. Nothing here imports Qt.
"""
