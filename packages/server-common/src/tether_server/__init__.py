"""What both Tether servers share that does I/O: start-up, options, TLS, binding and the
``--workers`` supervisor.

- :mod:`tether_server.startup`: option groups, ``MODULE:APP`` import, TLS context, logging,
  :class:`~tether_server.startup.ConfigError`, ``--workers``/``--reload`` start-up.
- :mod:`tether_server.binding`: the listening socket.
- :mod:`tether_server.supervisor`: the process supervisor behind ``--workers`` and ``--reload``
  (its workers: :mod:`tether_server.workers`; the ``--reload`` watch:
  :mod:`tether_server.reload_watch`).
- :mod:`tether_server.accesslog`: ``--access-log-format`` (gunicorn's atoms), compiled once.

The sans-I/O rules every server needs (targets, paths, trusted proxies, canned responses) are
the core's public :mod:`tether.serving`.
"""
