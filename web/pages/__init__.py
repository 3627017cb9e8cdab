"""The panel's pages: one module per area, each exporting a blueprint ``bp`` (and ``nav``).

``web.create_app`` registers every module found here. Views parse a form or a query string,
call one service of ``accessd``, and render; the rules live in ``accessd``.
"""
