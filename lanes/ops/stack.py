"""The whole topology on one machine: Redis, the simulator, one worker per lane and, when
asked, Flower and the Prometheus exporter.

``lanes up`` and ``lanes demo`` use it; it starts only what is missing and stops, on exit,
only what it started. Workers (``celery -A lanes.workers.celery_app``) and Flower
(:mod:`lanes.ops.flower_server`) are separate processes. One stack runs a deployment at a time:
another on the same state directory, or whose workers would take the node names of workers
already answering on the same Redis, is refused before it starts anything.

Its ``log`` reports progress only; where each part can be reached is on the stack's
attributes (``sim``, ``flower_url``, ``metrics_url``) for the caller to say once.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from lanes.broker.app import wait_for_queues
from lanes.broker.embedded import port_open, resolve_redis
from lanes.deployment import Deployment, open_deployment
from lanes.kernel.config import Config, SimMode
from lanes.kernel.config.models import WorkerSpec
from lanes.kernel.errors import InfrastructureError
from lanes.kernel.redact import mask_url_secrets
from lanes.ops.exporter import multiproc_dir, prepare_multiproc_dir, start_exporter
from lanes.ops.flower import (
    FlowerAuth,
    cookie_secret,
    flower_command,
    flower_env,
    flower_url,
    pick_port,
    resolve_auth,
    wait_answering,
)
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.ops.stack_lock import hold
from lanes.sim import ModelLimits, Profile, Simulator
from lanes.workers.providers import is_simulated
from lanes.workers.services.liveness import liveness


def sim_profiles(config: Config) -> dict[str, Profile]:
    """One simulator profile per instance: its models, context windows and (optionally) limits.

    With ``simulator.enforce_limits`` the profile carries the instance's per-minute limits and
    its ``model_limits`` as configured (no ``limit_margin``), so the simulator keeps buckets per
    model class exactly as the workers' limiter does; concurrency is not simulated.
    """
    spec = config.simulator
    profiles = {}
    for name, inst in config.instances.items():
        limits = inst.limits if spec.enforce_limits else None
        model_limits = inst.model_limits if spec.enforce_limits else {}
        profiles[name] = Profile(
            models=list(inst.models),
            context_windows={m: config.models[m].context_window for m in inst.models},
            cache_min_tokens={m: config.models[m].cache_min_tokens for m in inst.models},
            latency_s=spec.latency_s,
            latency_jitter_s=spec.latency_jitter_s,
            requests_per_min=limits.requests_per_min if limits else 0,
            input_tokens_per_min=limits.input_tokens_per_min if limits else 0,
            output_tokens_per_min=limits.output_tokens_per_min if limits else 0,
            model_limits={
                model: ModelLimits(
                    requests_per_min=own.requests_per_min,
                    input_tokens_per_min=own.input_tokens_per_min,
                    output_tokens_per_min=own.output_tokens_per_min,
                )
                for model, own in model_limits.items()
            },
        )
    return profiles


def worker_node(lane: str) -> str:
    """The Celery node name of the worker a stack runs for ``lane`` on this host (what
    ``-n lanes-<lane>@%h`` expands to)."""
    return f"lanes-{lane}@{socket.gethostname()}"


def worker_command(
    config: Config, lanes: list[str], name: str, concurrency: int | None
) -> list[str]:
    """The command of a worker serving ``lanes``: the pool of the lanes' own ``worker`` when
    it serves one lane that has one, else the config's ``worker``; ``concurrency`` wins."""
    spec = lane_worker(config, lanes)
    return [
        sys.executable, "-m", "celery", "-A", "lanes.workers.celery_app", "worker",
        "-Q", ",".join(lanes),
        "-P", spec.pool,
        "-c", str(concurrency or spec.concurrency),
        "-n", f"{name}@%h",
        "--without-gossip", "--without-mingle", "--loglevel=INFO",
    ]  # fmt: skip


def lane_worker(config: Config, lanes: list[str]) -> WorkerSpec:
    own = config.instances[lanes[0]].worker if len(lanes) == 1 else None
    return own or config.worker


class Stack:
    """Context manager that brings the topology up and takes down what it started."""

    def __init__(
        self,
        config: Config,
        config_path: Path,
        *,
        lanes: list[str] | None = None,
        concurrency: int | None = None,
        log: Callable[[str], None] = lambda _msg: None,
        flower: bool = False,
        metrics: bool = False,
    ) -> None:
        self.config = config
        self.config_path = config_path.resolve()
        self.lanes = lanes if lanes is not None else config.lanes()
        self.concurrency = concurrency
        self.log = log
        self.want_flower = flower
        self.want_metrics = metrics
        self.redis_url = ""
        self.sim: Simulator | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.started_at: dict[str, float] = {}
        """When each lane's worker was (re)started (monotonic seconds)."""
        self.flower_url: str | None = None
        self.flower_auth: FlowerAuth | None = None
        self.metrics_url: str | None = None
        self.log_dir = Path(config.state_dir) / "logs"
        self.multiproc_dir = multiproc_dir(config)
        self._deployment: Deployment | None = None
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def _start(self) -> None:
        # Before anything starts: a production config without Flower auth stops here, and so
        # does a stack already running from this state directory.
        auth = self._flower_auth()
        state_dir = Path(self.config.state_dir)
        lock = hold(state_dir)
        self._exit.callback(lock.release)
        self.redis_url = self._exit.enter_context(
            resolve_redis(
                self.config.redis_url, state_dir=state_dir, master=self.config.redis_sentinel_master
            )
        )
        self._deployment = self._exit.enter_context(open_deployment(self.config, self.redis_url))
        lock.record(self.lanes, mask_url_secrets(self.redis_url))
        self._refuse_running_workers()
        self._start_sim()
        prepare_multiproc_dir(self.multiproc_dir)
        self._start_workers()
        if auth is not None:
            self._start_flower(auth)
        if self.want_metrics and self.config.metrics.enabled:
            self._start_metrics()

    def _flower_auth(self) -> FlowerAuth | None:
        """Flower's credentials if this stack runs Flower, else None (and say why not)."""
        if not self.want_flower:
            return None
        if not self.config.flower.enabled:
            self.log("flower: off (flower.enabled is false)")
            return None
        return resolve_auth(self.config)

    def _refuse_running_workers(self) -> None:
        """Raise InfrastructureError if a worker with one of this stack's node names already
        answers on this Redis (a stack from another state directory runs the deployment)."""
        names = [worker_node(lane) for lane in self.lanes]
        try:
            replies = self.app().control.ping(destination=names, timeout=1.0) or []
        except (OperationalError, redis.RedisError, OSError) as exc:
            raise InfrastructureError(f"cannot ask Redis which workers run: {exc}") from exc
        alive = sorted(name for reply in replies for name in reply)
        if alive:
            raise InfrastructureError(
                f"workers {', '.join(alive)} already run on {mask_url_secrets(self.redis_url)}"
                f" (redis_prefix {self.config.redis_prefix}): another `lanes up` or `lanes demo`"
                " runs this deployment, perhaps from another directory. Use it, or stop it"
                " first (Ctrl-C in its terminal)"
            )

    def _start_sim(self) -> None:
        spec = self.config.simulator
        needed = any(is_simulated(self.config, lane) for lane in self.lanes)
        if not needed or spec.mode is SimMode.NEVER:
            return
        if spec.port and port_open(spec.host, spec.port):
            self.log(f"simulator: already running on {spec.host}:{spec.port}")
            return
        self.log("starting the simulator")
        self.sim = Simulator(host=spec.host, port=spec.port, profiles=sim_profiles(self.config))
        self.sim.start()
        self._exit.callback(self.sim.stop)

    def child_env(self) -> dict[str, str]:
        extra = {"REDIS_URL": self.redis_url, "LANES_CONFIG": str(self.config_path)}
        if self.sim is not None:
            extra["LANES_SIMULATOR__PORT"] = str(self.sim.port)
        return child_env(extra)

    def _start_workers(self) -> None:
        self.log(f"starting {len(self.lanes)} worker(s)")
        self.workers = [self._spawn_worker(lane) for lane in self.lanes]
        # A lambda, not the list: respawn_dead() replaces entries of self.workers.
        self._exit.callback(lambda: stop_all(self.workers))

    def _spawn_worker(self, lane: str) -> subprocess.Popen[bytes]:
        cmd = worker_command(self.config, [lane], f"lanes-{lane}", self.concurrency)
        env = {**self.child_env(), "PROMETHEUS_MULTIPROC_DIR": str(self.multiproc_dir)}
        self.started_at[lane] = time.monotonic()
        return spawn(cmd, env=env, log_file=self.log_dir / f"worker-{lane}.log")

    def _start_flower(self, auth: FlowerAuth) -> None:
        """Flower after the workers, answering before the stack reports it up.

        A port already taken (another Flower, say the compose one) is reported and skipped
        rather than failing the whole stack: the workers do not need Flower.
        """
        spec = self.config.flower
        if spec.port and port_open(spec.host, spec.port):
            self.log(
                f"flower: port {spec.port} on {spec.host} is taken, not starting one"
                " (set flower.port; 0: any free port)"
            )
            return
        self.log("starting flower")
        port = pick_port(spec.host, spec.port)
        log_file = self.log_dir / "flower.log"
        cmd = flower_command(self.config, host=spec.host, port=port)
        env = flower_env(self.child_env(), auth, cookie_secret())
        proc = spawn(cmd, env=env, log_file=log_file)
        self._exit.callback(stop_all, [proc])
        url = flower_url(spec.host, port)
        wait_answering(url, proc, log_file)
        self.flower_url, self.flower_auth = url, auth

    def _start_metrics(self) -> None:
        """The exporter; like Flower, a port already taken is reported, not fatal."""
        self.log("starting the metrics exporter")
        try:
            exporter = start_exporter(self.config, self.redis_url, multiproc=self.multiproc_dir)
        except InfrastructureError as exc:
            self.log(f"metrics: not served: {exc}")
            return
        self._exit.callback(exporter.close)
        self.metrics_url = exporter.url

    def respawn_dead(self) -> list[str]:
        """Start a new worker for every lane whose worker exited; return those lanes.

        Celery workers can exit when Redis goes away under them; their unacknowledged jobs
        come back after the visibility timeout, so a replacement is all that is needed.
        """
        revived = []
        for i, (lane, proc) in enumerate(zip(self.lanes, self.workers, strict=True)):
            if proc.poll() is not None:
                self.log(f"worker for {lane} exited with {proc.returncode}; starting another")
                self.workers[i] = self._spawn_worker(lane)
                revived.append(lane)
        return revived

    def restart_stuck(self) -> list[str]:
        """Restart the worker of every lane the liveness canary finds not consuming
        (:mod:`lanes.workers.services.liveness`); return those lanes.

        A worker is judged only once it has had time to send and take a canary of its own
        (``liveness.interval_s`` + ``liveness.timeout_s`` since it started), so a replacement
        is not restarted again for its predecessor's stuck canary. Its unacknowledged jobs come
        back after the visibility timeout, as when a worker dies.
        """
        spec = self.config.liveness
        if spec.interval_s <= 0:
            return []
        grace_s = spec.interval_s + spec.timeout_s
        now = time.monotonic()
        due = [lane for lane in self.lanes if now - self.started_at.get(lane, now) > grace_s]
        if not due:
            return []
        deployment = self.deployment
        found = liveness(deployment.redis, deployment.keys, due, spec.timeout_s)
        restarted = []
        for i, lane in enumerate(self.lanes):
            if lane in found and found[lane].consuming is False:
                self.log(f"worker for {lane}: {found[lane].detail}; restarting it")
                stop_all([self.workers[i]])
                self.workers[i] = self._spawn_worker(lane)
                restarted.append(lane)
        return restarted

    @property
    def deployment(self) -> Deployment:
        """The deployment this stack runs, open from its start to its end."""
        if self._deployment is None:
            raise InfrastructureError("the stack has not started: use it in a `with` block")
        return self._deployment

    def app(self) -> Celery:
        return self.deployment.app

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until a worker consumes every lane; raise if one dies or time runs out."""
        wait_for_queues(self.app(), set(self.lanes), timeout_s=timeout_s, check=self._check_alive)

    def _check_alive(self) -> None:
        for proc in self.workers:
            if proc.poll() is not None:
                raise InfrastructureError(
                    f"a worker exited with code {proc.returncode}; see logs in {self.log_dir}"
                )


@contextlib.contextmanager
def running(
    config: Config,
    config_path: Path,
    *,
    lanes: list[str] | None = None,
    concurrency: int | None = None,
    log: Callable[[str], None] = lambda _msg: None,
    flower: bool = False,
    metrics: bool = False,
) -> Iterator[Stack]:
    """The topology, up and consuming every lane, for the duration of the ``with``."""
    with Stack(
        config, config_path, lanes=lanes, concurrency=concurrency, log=log,
        flower=flower, metrics=metrics,
    ) as stack:  # fmt: skip
        log("waiting until a worker consumes every lane")
        stack.wait_ready()
        yield stack
