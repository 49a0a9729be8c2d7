"""Flower's web app as lanes serves it: ``python -m lanes.ops.flower_server --address=A --port=P``.

:func:`lanes.ops.flower.flower_command` builds that command for ``lanes up``, ``lanes demo
--flower`` and ``lanes flower``. It runs Flower's own app (pages, read-only API) on the
deployment's Celery app, with three changes to Flower's handler list:

- every handler asks for basic auth, ``/metrics`` included; only ``/healthcheck`` (it answers
  ``OK``) and Flower's static files do not;
- unless ``flower.control`` is true, the endpoints that act (send, apply, revoke or abort a
  task; shut down, restart or resize a worker; change limits or consumers) and
  ``/api/task/result`` (a job's whole result, reply included) answer 403, and Flower runs
  read-only (no action buttons);
- the Broker page and ``/api/queues/length`` list every lane of the config, not only the
  queues of the workers Flower has inspected so far (it inspects them once at start and then
  only one by one, as their pages are opened).

Flower reads its settings (``FLOWER_BASIC_AUTH``, ``FLOWER_COOKIE_SECRET``...) from its
environment, as ``celery flower`` does; without basic auth this module refuses to serve.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import signal
import sys
from typing import Any

import tornado.web
from celery import Celery

# Flower ships no type hints: every name from it is Any to mypy. Importing flower.urls loads
# every handler module it lists, so api.* and views.* below are all loaded.
from flower import api, urls, views  # type: ignore[import-untyped]
from flower.app import Flower, rewrite_handler  # type: ignore[import-untyped]
from flower.command import apply_env_options, extract_settings  # type: ignore[import-untyped]
from kombu.exceptions import OperationalError
from tornado.options import options, parse_command_line
from tornado.routing import URLSpec
from tornado.web import StaticFileHandler

from lanes.deployment import open_deployment
from lanes.kernel.config import Config, load_config
from lanes.kernel.errors import ConfigError, LanesError
from lanes.ops.flower import AUTH_ENV, TASK_COLUMNS

CONTROL_OFF = (
    "this Flower endpoint acts on the deployment and is off: lanes runs Flower read-only"
    " unless flower.control is true in the config"
)

READ_ONLY = frozenset({
    views.workers.WorkersView, views.workers.WorkerView, views.tasks.TaskView,
    views.tasks.TasksView, views.tasks.TasksDataTable, views.broker.BrokerView,
    api.workers.ListWorkers, api.tasks.ListTasks, api.tasks.ListTaskTypes,
    api.tasks.GetQueueLengths, api.tasks.TaskInfo, views.monitor.Metrics,
})  # fmt: skip
"""Flower's handlers that only show: served to every user (behind basic auth). Any other
handler, including one a later Flower adds, is served only with ``flower.control``."""

AS_IS = frozenset({
    StaticFileHandler, views.monitor.Healthcheck, views.auth.LoginHandler,
    views.auth.LogoutHandler, views.error.NotFoundErrorHandler,
})  # fmt: skip
"""Served as Flower has them: its static files, ``/healthcheck``, the OAuth login (unused with
basic auth) and the catch-all 404."""

log = logging.getLogger(__name__)


class _Guarded(views.BaseHandler):  # type: ignore[misc]  # Flower's handlers are untyped
    """Put before a Flower handler class: basic auth on every request, every lane listed."""

    def prepare(self) -> Any:
        # Reading current_user checks basic auth; a missing or wrong password raises 401.
        if not self.current_user:
            raise tornado.web.HTTPError(401)
        return super().prepare()

    def get_active_queue_names(self) -> list[str]:
        consumed = set(super().get_active_queue_names())
        lanes = {queue.name for queue in self.capp.conf.task_queues or []}
        return sorted(consumed | lanes)


class _ControlOff(_Guarded, api.BaseApiHandler):  # type: ignore[misc]  # untyped base
    """What an endpoint that acts answers while ``flower.control`` is off (after auth)."""

    def prepare(self) -> Any:
        super().prepare()
        raise tornado.web.HTTPError(403, CONTROL_OFF)


def handlers(control: bool, url_prefix: str = "") -> list[URLSpec]:
    """Flower's handler list as lanes serves it (see the module)."""
    served = [_served(_spec(entry), control) for entry in urls.handlers]
    return [rewrite_handler(spec, url_prefix) for spec in served] if url_prefix else served


def _spec(entry: Any) -> URLSpec:
    if isinstance(entry, URLSpec):
        return entry
    return URLSpec(*entry)


def _served(spec: URLSpec, control: bool) -> URLSpec:
    flower_class = spec.handler_class
    if flower_class in AS_IS:
        return spec
    if flower_class in READ_ONLY or control:
        served: type = type(flower_class.__name__, (_Guarded, flower_class), {})
    else:
        served = _ControlOff
    assert spec.regex.pattern is not None
    return URLSpec(spec.regex.pattern, served, spec.kwargs, spec.name)


def build(config: Config, capp: Celery, argv: list[str]) -> Any:
    """Flower's app on ``capp``, its options from the environment and ``argv``
    (``--address``, ``--port``), served as the module says."""
    apply_env_options()
    parse_command_line([sys.argv[0], *argv])
    if not options.basic_auth:
        raise ConfigError(
            "Flower needs basic auth: lanes serves no Flower without it",
            source=f"${AUTH_ENV}",
            fix="set user:password (several: user1:pw1,user2:pw2), or start Flower with "
            "`lanes flower`, which generates a password",
        )
    options.persistent = False
    options.tasks_columns = TASK_COLUMNS
    if not config.flower.control:
        options.read_only = True  # Flower's own switch: no action buttons on its pages
    extract_settings()
    app = Flower(capp=capp, options=options, **urls.settings)
    # Flower builds its routes from its module-level list; rules added here come first and end
    # with Flower's catch-all, so no request ever reaches the unfiltered list.
    app.add_handlers(r".*", handlers(config.flower.control, options.url_prefix or ""))
    return app


def _enable_events(capp: Celery) -> None:
    """Turn the running workers' task events on now; Flower's own timer does it again every
    5 s, for workers that start later."""
    try:
        capp.control.enable_events()
    except OperationalError as exc:
        log.warning("task events not turned on yet: %s", exc)


def main(argv: list[str] | None = None) -> None:
    """Serve Flower until SIGTERM or Ctrl-C; a bad config or environment exits with its code."""
    try:
        config = load_config()
        app = build(config, open_deployment(config).app, argv or sys.argv[1:])
    except LanesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    _enable_events(app.capp)
    atexit.register(app.stop)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app.start_http_server()
    with contextlib.suppress(KeyboardInterrupt, SystemExit):  # the ways Flower is stopped
        app.start()


if __name__ == "__main__":
    main()
