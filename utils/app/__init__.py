"""interactive.py's viewer (session.py: state and exports; server.py: the local web server) and the bundled demo
(demo.py)."""
