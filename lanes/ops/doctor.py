"""``lanes doctor``: what is wrong with this deployment, and how to fix it.

Each check is a small function that returns :class:`Check` rows and never raises: a Redis
that is not there, a missing key or a database that does not answer is a finding, printed
with its fix, not a traceback. Secrets never reach a row: an API key is only ever named by its
variable (its value is neither shown nor sent anywhere), and every URL is shown with its
credentials masked.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import redis

from lanes.broker.connection import require_redis_url
from lanes.deployment import Deployment, open_deployment
from lanes.kernel.config import Config, SimMode
from lanes.kernel.errors import ConfigError, LanesError
from lanes.kernel.redact import mask_url_secrets
from lanes.ops.check import Check, Status
from lanes.ops.doctor_broker import broker_checks
from lanes.ops.doctor_sentinel import sentinel_checks

if TYPE_CHECKING:
    from sqlalchemy import Connection

SKEW_FAIL_S = 1.0
"""A host whose clock is further than this from Redis time fails the clock check."""
SKEW_WARN_S = 0.25
STALE_INTERVALS = 10
"""A clock record older than this many ``liveness.interval_s`` belongs to a host that stopped
reporting: it is reported as stale, its old skew is not."""
_REDIS_FIX = (
    "start Redis (`lanes up` starts one), or point redis_url in the config (or REDIS_URL) at "
    "the right one; a Redis that asks for a password needs it in the URL"
)
_NTP_FIX = (
    "rate limits, cooldowns and budget windows use Redis time, but logs and the ledger's "
    "timestamps would disagree: run NTP/chrony on {host}"
)


def run_checks(
    config: Config,
    config_path: Path | None,
    *,
    redis_url: str | None = None,
    timeout_s: float = 3.0,
) -> list[Check]:
    """Every check, in the order a person fixes things: config, Redis, keys, endpoints,
    database, clocks and the ledger's drainers (both are read from Redis, so they come
    with it)."""
    return [
        *_guarded("config", lambda: [config_check(config, config_path)]),
        *_guarded("redis", lambda: redis_checks(config, redis_url, timeout_s)),
        *_guarded("broker", lambda: broker_checks(config, timeout_s)),
        *_guarded("keys", lambda: key_checks(config)),
        *_guarded("endpoints", lambda: endpoint_checks(config, timeout_s)),
        *_guarded("database", lambda: [database_check(config, timeout_s)]),
    ]


def report_json(checks: list[Check]) -> dict[str, Any]:
    """``{"ok": bool, "checks": [...]}``: ok unless a check failed (warnings are not failures)."""
    return {"ok": not failures(checks), "checks": [asdict(check) for check in checks]}


def failures(checks: list[Check]) -> list[Check]:
    return [check for check in checks if check.status == "fail"]


def _guarded(name: str, check: Callable[[], list[Check]]) -> list[Check]:
    """``check()``'s rows, or one failed row saying why it could not run: the doctor must
    report on a broken deployment, not crash on it."""
    try:
        return check()
    except LanesError as exc:
        return [Check(name, "fail", str(exc), "fix what the detail names")]
    except Exception as exc:
        detail = f"the check could not run: {type(exc).__name__}: {_one_line(exc)}"
        return [Check(name, "fail", detail, "fix what the detail names")]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# -- config --------------------------------------------------------------------------------


def config_check(config: Config, config_path: Path | None) -> Check:
    """The config loaded and validated; a config with no enabled lane cannot run any job."""
    where = str(config_path) if config_path else "the config"
    enabled = [name for name, spec in config.instances.items() if spec.enabled]
    if not enabled:
        return Check(
            "config", "fail", f"{where}: every instance is disabled", "set enabled: true on one"
        )
    detail = f"{where}: valid; {len(enabled)} lanes enabled ({', '.join(enabled)})"
    return Check("config", "ok", detail)


def config_error_check(error: ConfigError) -> Check:
    """A config that does not load, as the first (and only) row: the file, key and fix."""
    detail = ": ".join(part for part in (error.source, error.key, error.message) if part)
    return Check("config", "fail", detail, error.fix or "fix the config file")


# -- Redis ---------------------------------------------------------------------------------


def redis_checks(config: Config, redis_url: str | None, timeout_s: float) -> list[Check]:
    """Reachability, then (only when it answers) persistence, eviction, clocks and the
    ledger's drainers."""
    try:
        url = redis_url or require_redis_url(config)
    except LanesError:
        detail = "no Redis: none configured (redis_url, REDIS_URL) and none on 127.0.0.1:6379"
        return [Check("redis", "fail", detail, _REDIS_FIX)]
    rows = [password_check(url)] if config.production else []
    # A client that gives up after timeout_s, with no retries: the doctor asks once.
    with open_deployment(config, url, timeout_s=timeout_s, ask_once=True) as deployment:
        client = deployment.redis
        reach = reachability_check(client, url)
        if reach.status == "fail":
            return [reach, *rows]
        return [
            reach,
            *rows,
            *_guarded("sentinel", lambda: sentinel_checks(config, url, timeout_s)),
            *_guarded("redis persistence", lambda: [persistence_check(client)]),
            *_guarded("redis eviction", lambda: [eviction_check(client)]),
            *_guarded("clock", lambda: clock_checks(deployment)),
            *_guarded("ledger drainer", lambda: [drainer_check(deployment)]),
        ]


def reachability_check(client: redis.Redis, url: str) -> Check:
    """PING: everything else in lanes needs this Redis."""
    shown = mask_url_secrets(url)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return Check(
            "redis", "fail", f"cannot reach Redis at {shown}: {_one_line(exc)}", _REDIS_FIX
        )
    version = ""
    with contextlib.suppress(redis.RedisError):
        version = f" (Redis {client.info('server').get('redis_version', '?')})"
    return Check("redis", "ok", f"{shown} answers{version}")


def password_check(url: str) -> Check:
    """In production, Redis holds every queued prompt and result: it must ask for a password."""
    parts = urlsplit(url)
    if parts.password or parse_qs(parts.query).get("password"):
        return Check("redis password", "ok", "the Redis URL carries a password")
    return Check(
        "redis password",
        "fail",
        "production is set and the Redis URL has no password: whoever reaches Redis reads "
        "every queued prompt and result (and workers refuse to start)",
        "require a password on Redis (requirepass or an ACL user) and put it in REDIS_URL: "
        "redis://:PASSWORD@host:6379/0 (rediss:// for TLS)",
    )


def persistence_check(client: redis.Redis) -> Check:
    """Queued jobs, rate limits, budgets and the ledger's hand-off queue live in Redis: without
    the AOF a restart forgets them."""
    name = "redis persistence"
    try:
        value = _config_get(client, "appendonly")
    except redis.ResponseError as exc:
        return _config_refused(name, "appendonly", "yes", exc)
    if value == "yes":
        fsync = _config_get(client, "appendfsync")
        return Check(name, "ok", f"appendonly yes (appendfsync {fsync}): a restart keeps the jobs")
    return Check(
        name,
        "fail",
        f"appendonly is {value or 'unset'}: jobs and limits are lost on a Redis restart",
        "set appendonly yes (CONFIG SET appendonly yes, and in redis.conf so that it stays)",
    )


def eviction_check(client: redis.Redis) -> Check:
    """Any policy but ``noeviction`` lets a full Redis drop queued jobs and results."""
    name = "redis eviction"
    try:
        value = _config_get(client, "maxmemory-policy")
    except redis.ResponseError as exc:
        return _config_refused(name, "maxmemory-policy", "noeviction", exc)
    if value == "noeviction":
        return Check(name, "ok", "maxmemory-policy noeviction: a full Redis refuses, never drops")
    return Check(
        name,
        "fail",
        f"maxmemory-policy is {value or 'unset'}: Redis may drop queued jobs, results and "
        "limits when its memory is full",
        "set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in "
        "redis.conf so that it stays)",
    )


def _config_get(client: redis.Redis, parameter: str) -> str:
    value = client.config_get(parameter).get(parameter)
    return str(value) if value is not None else ""


def _config_refused(name: str, parameter: str, wanted: str, exc: redis.ResponseError) -> Check:
    """Managed Redis services refuse CONFIG: say how to check by hand instead."""
    return Check(
        name,
        "warn",
        f"CONFIG GET {parameter} is refused ({_one_line(exc)}): a managed Redis?",
        f"check by hand that {parameter} is {wanted}: `redis-cli CONFIG GET {parameter}` where "
        "allowed, else your provider's console or parameter group",
    )


# -- clocks --------------------------------------------------------------------------------


def clock_checks(deployment: Deployment) -> list[Check]:
    """This host's clock against Redis time, then each worker host's as it last reported it."""
    config, client = deployment.config, deployment.redis
    redis_now, local_now = _redis_time(client)
    me = socket.gethostname()
    rows = [_skew_row(f"clock {me} (this host)", me, local_now - redis_now)]
    interval = config.liveness.interval_s
    if interval <= 0:
        detail = "liveness.interval_s is 0: workers do not report their clocks"
        return [*rows, Check("clock workers", "ok", detail)]
    key = deployment.keys.clocks()
    records = {str(host): str(raw) for host, raw in client.hgetall(key).items()}
    return [*rows, *_host_rows(records, redis_now, interval, key)]


def _redis_time(client: redis.Redis) -> tuple[float, float]:
    """(Redis TIME, this host's time at the middle of the round trip), in seconds."""
    before = time.time()
    seconds, micros = client.time()
    after = time.time()
    return seconds + micros / 1e6, (before + after) / 2


def _host_rows(records: dict[str, str], redis_now: float, interval: float, key: str) -> list[Check]:
    """One row per host that is off, stale or unreadable; one row for every host in sync."""
    rows: list[Check] = []
    in_sync: list[str] = []
    for host in sorted(records):
        record = _clock_record(records[host])
        if record is None:
            detail = f"{host}: unreadable clock record"
            rows.append(Check(f"clock {host}", "warn", detail, f"HDEL {key} {host}"))
            continue
        local, reported_at = record
        age = redis_now - reported_at
        if age > STALE_INTERVALS * interval:
            rows.append(_stale_row(host, age, interval, key))
            continue
        row = _skew_row(f"clock {host}", host, local - reported_at)
        if row.status == "ok":
            in_sync.append(f"{host} ({local - reported_at:+.3f} s)")
        else:
            rows.append(row)
    return [_in_sync_row(in_sync), *rows]


def _clock_record(raw: str) -> tuple[float, float] | None:
    """(host's time, Redis time) of one record, or None when it is not one."""
    try:
        data = json.loads(raw)
        return float(data["local"]), float(data["redis"])
    except (ValueError, TypeError, KeyError):
        return None


def _skew_status(skew_s: float) -> Status:
    if abs(skew_s) > SKEW_FAIL_S:
        return "fail"
    return "warn" if abs(skew_s) > SKEW_WARN_S else "ok"


def _skew_row(name: str, host: str, skew_s: float) -> Check:
    status = _skew_status(skew_s)
    detail = f"{round(skew_s, 3) + 0.0:+.3f} s from Redis time"  # + 0.0: never "-0.000"
    return Check(name, status, detail, "" if status == "ok" else _NTP_FIX.format(host=host))


def _stale_row(host: str, age_s: float, interval: float, key: str) -> Check:
    return Check(
        f"clock {host}",
        "warn",
        f"stale: last report {age_s:.0f} s ago (workers report every {interval:g} s); its "
        "workers stopped or cannot reach Redis",
        f"start {host}'s workers if it should run some; else forget it: HDEL {key} {host}",
    )


def _in_sync_row(hosts: list[str]) -> Check:
    if not hosts:
        return Check("clock workers", "ok", "no running worker has reported its clock yet")
    within = f"within {SKEW_WARN_S:g} s of Redis time"
    return Check("clock workers", "ok", f"{len(hosts)} hosts {within}: {', '.join(hosts)}")


# -- the ledger's drainers -----------------------------------------------------------------


def drainer_check(deployment: Deployment) -> Check:
    """Whether the drainers that move ledger events from Redis into the database run and
    keep up (:mod:`lanes.workers.services.ledger_health`)."""
    from lanes.workers.services.ledger_health import ledger_health, stale_after_s

    spec = deployment.config.ledger
    if not spec.enabled:
        return Check("ledger drainer", "ok", "ledger.enabled is false: nothing to drain")
    stale_s = stale_after_s(spec.flush_interval_s)
    status, detail, fix = ledger_health(deployment.redis, deployment.keys, stale_s).verdict()
    return Check("ledger drainer", status, detail, fix)


# -- keys and endpoints --------------------------------------------------------------------


def key_checks(config: Config) -> list[Check]:
    return [key_check(config, lane) for lane, spec in config.instances.items() if spec.enabled]


def key_check(config: Config, lane: str) -> Check:
    """Whether the lane's key variable holds a key (never what it holds), and what that means
    under ``simulator.mode``."""
    from lanes.workers.providers import is_simulated

    spec = config.instances[lane]
    name = f"key {lane}"
    variable = spec.api_key_env
    mode = config.simulator.mode
    if variable is None:
        where = "the simulator" if is_simulated(config, lane) else spec.base_url
        return Check(name, "ok", f"needs no key (no api_key_env): calls {where}")
    key = spec.api_key()
    if key is not None and not key.get_secret_value().strip():
        return Check(name, "fail", f"{variable} is blank", f"export {variable} with the key")
    if key is not None:
        simulated = "; simulator.mode is always: the simulator answers"
        return Check(name, "ok", f"{variable} is set{simulated if mode is SimMode.ALWAYS else ''}")
    if mode is SimMode.NEVER:
        return Check(
            name,
            "fail",
            f"{variable} is not set and simulator.mode is never: every call on {lane} fails",
            f"export {variable}, or set instances.{lane}.enabled: false",
        )
    detail = f"{variable} is not set: {lane} uses the simulator"
    if config.production:
        return Check(name, "warn", f"{detail} in production", f"export {variable}")
    return Check(name, "ok", f"{detail} (export it to call {spec.base_url})")


def endpoint_checks(config: Config, timeout_s: float) -> list[Check]:
    """The simulator for the simulated lanes; each real base URL once (lanes sharing one
    share its row), probed in parallel so that several dead endpoints cost one timeout."""
    from lanes.workers.providers import is_simulated  # brings the provider SDKs: seconds to import

    lanes = [lane for lane, spec in config.instances.items() if spec.enabled]
    simulated = [lane for lane in lanes if is_simulated(config, lane)]
    by_url: dict[str, list[str]] = {}
    for lane in lanes:
        if lane not in simulated:
            by_url.setdefault(config.instances[lane].base_url, []).append(lane)
    rows = [simulator_check(config, simulated, timeout_s)] if simulated else []
    if not by_url:
        return rows
    with ThreadPoolExecutor(max_workers=min(8, len(by_url))) as pool:
        found = pool.map(lambda item: _probe(item[0], item[1], timeout_s), by_url.items())
        return rows + [row for part in found for row in part]


def _probe(url: str, lanes: list[str], timeout_s: float) -> list[Check]:
    name = f"endpoint {', '.join(lanes)}"
    return _guarded(name, lambda: [endpoint_check(url, lanes, timeout_s)])


def simulator_check(config: Config, lanes: list[str], timeout_s: float) -> Check:
    """The simulator's health route: the lanes without a key get nothing done without it."""
    spec = config.simulator
    where = f"{spec.host}:{spec.port}"
    served = f"for {', '.join(lanes)}"
    try:
        # Loopback only: no proxy from the environment may stand in between.
        reply = httpx.get(spec.base_url("_sim") + "/health", timeout=timeout_s, trust_env=False)
    except httpx.HTTPError:
        return Check(
            "simulator",
            "warn",
            f"nothing answers at {where} {served}",
            "start it: lanes sim, or lanes up",
        )
    if reply.status_code != 200:
        return Check(
            "simulator",
            "warn",
            f"{where} answers HTTP {reply.status_code}, not as the lanes simulator",
            "free the port, or set simulator.port to another one",
        )
    return Check("simulator", "ok", f"answering at {where} {served}")


def endpoint_check(url: str, lanes: list[str], timeout_s: float) -> Check:
    """A GET to the base URL, without the key: any HTTP answer (even 401 or 404) proves the
    provider is reachable from this host; only no answer at all is a problem."""
    name = f"endpoint {', '.join(lanes)}"
    fix = (
        f"check instances.{lanes[0]}.base_url, DNS, and any proxy or firewall between this host "
        "and it (workers call it from their hosts)"
    )
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
            reply = client.get(url)
    except httpx.TimeoutException:
        return Check(name, "fail", f"{url}: no answer within {timeout_s:g} s", fix)
    except httpx.HTTPError as exc:
        return Check(name, "fail", f"{url}: {_one_line(exc) or type(exc).__name__}", fix)
    return Check(name, "ok", f"{url} answers (HTTP {reply.status_code}; no key sent)")


# -- database ------------------------------------------------------------------------------


def database_check(config: Config, timeout_s: float) -> Check:
    """The ledger's database, once it exists: reachable, and its schema at this lanes' head."""
    from sqlalchemy import make_url

    from lanes.stores.sql import database_url

    if not config.ledger.enabled:
        return Check("database", "ok", "ledger.enabled is false: nothing is recorded")
    try:
        url = database_url(config)
    except ConfigError as exc:
        return Check("database", "fail", f"{exc.key}: {exc.message}", exc.fix)
    shown = mask_url_secrets(url)
    parsed = make_url(url)
    if _sqlite_file_missing(parsed.get_backend_name(), parsed.database):
        return Check("database", "ok", f"{shown}: not created yet; the first worker creates it")
    return _schema_check(url, shown, timeout_s)


def _sqlite_file_missing(backend: str, database: str | None) -> bool:
    """A SQLite ledger no worker has created yet: nothing to check, and the doctor must not
    create it."""
    on_disk = backend == "sqlite" and database not in (None, "", ":memory:")
    return on_disk and not Path(str(database)).exists()


def _schema_check(url: str, shown: str, timeout_s: float) -> Check:
    """Connect once with a short timeout and read the schema revision, changing nothing."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from lanes.stores.sql.ledger import fix_for

    engine = create_engine(url, connect_args=_connect_args(url, timeout_s), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            at = _revisions(conn)
    except SQLAlchemyError as exc:
        reason = _one_line(getattr(exc, "orig", None) or exc)
        return Check("database", "fail", f"{shown}: {reason}", fix_for(url))
    finally:
        engine.dispose()
    return _schema_row(shown, at)


def _connect_args(url: str, timeout_s: float) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"timeout": timeout_s}
    if url.startswith("postgresql"):
        return {"connect_timeout": max(2, math.ceil(timeout_s)), "application_name": "lanes"}
    return {}


def _revisions(conn: Connection) -> tuple[str, ...]:
    from sqlalchemy import text

    from lanes.stores.sql.migrations import current

    conn.execute(text("SELECT 1"))
    return current(conn)


def _schema_row(shown: str, at: tuple[str, ...]) -> Check:
    """At head: ok; behind (or empty): a worker upgrades it; unknown: a newer lanes did."""
    from alembic.script import ScriptDirectory

    from lanes.stores.sql.migrations import alembic_config, head

    newest = head()
    if at == (newest,):
        return Check("database", "ok", f"{shown}: schema at {newest} (the newest)")
    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    unknown = [rev for rev in at if rev not in known]
    if unknown:
        return Check(
            "database",
            "fail",
            f"{shown}: schema at {', '.join(unknown)}, which this lanes does not know "
            "(a newer lanes migrated it)",
            "upgrade lanes on this host to the version the workers run",
        )
    return Check(
        "database",
        "warn",
        f"{shown}: schema at {', '.join(at) or 'none'}, behind {newest}",
        "a worker upgrades it on start (lanes worker, lanes up)",
    )
