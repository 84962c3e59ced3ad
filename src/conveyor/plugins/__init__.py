"""Conveyor's built-in plugins: small programs run on the host as ``python -m``.

The contract is Drone's (and Dotscience's): a step's ``settings`` arrive as environment
variables ``PLUGIN_<KEY>`` (upper case; lists joined with commas, anything nested as
JSON), ``from_secret`` settings too; the run status so far is in ``DRONE_BUILD_STATUS``
(Drone and Dotscience files) or ``CONVEYOR_RUN_STATUS`` (every step). Each plugin exits
0 when the service accepted the request; otherwise it prints one line and exits 1 (the
service refused or could not be reached) or 2 (a setting is missing or wrong).

- ``conveyor.plugins.slack``: a message to a Slack incoming webhook.
- ``conveyor.plugins.circleci``: starts a pipeline through the CircleCI v2 API.
- ``conveyor.plugins.webhook``: an HTTP POST with a JSON body.

These modules import nothing else of Conveyor: they run with the environment alone.

``datatorch_api/datatorch``: not a plugin but of the same kind (stdlib only, nothing of
Conveyor): the ``datatorch`` module a DataTorch python action imports for its inputs and
outputs, put on its ``PYTHONPATH`` (an installed ``datatorch`` package takes its place).
"""
