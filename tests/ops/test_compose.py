"""docker-compose.yml, Dockerfile and .env.example, checked without a Docker engine.

No machine of ours runs Docker, so the compose file is validated against the Compose
Specification's JSON schema and each hardening point is asserted on the parsed file: a regression
(a port on 0.0.0.0, a secret in the environment, a root user) fails here, not in production.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from lanes.broker.sentinel import parse_sentinel
from lanes.kernel.config import load_config

ROOT = Path(__file__).resolve().parents[2]
LANES_IMAGE = "lanes:latest"
METRICS_DIR = "/var/lib/lanes/metrics"
PROFILED = {"postgres": "postgres", "prometheus": "prometheus", "redis-replica": "sentinel",
            "sentinel1": "sentinel", "sentinel2": "sentinel", "sentinel3": "sentinel",
            "rabbitmq1": "rabbitmq", "rabbitmq2": "rabbitmq", "rabbitmq3": "rabbitmq"}  # fmt: skip
"""Service -> its profile."""
# A `${VAR...}` reference compose interpolates; `$${` is an escaped, literal `${`.
COMPOSE_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
SECRET_NAME = re.compile(r"KEY|PASSWORD|SECRET|AUTH|TOKEN|DATABASE_URL|REDIS_URL")


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def _services() -> dict[str, dict[str, Any]]:
    return dict(_compose()["services"])


def _lanes_services() -> dict[str, dict[str, Any]]:
    """Services running the lanes image: the workers, Flower and the metrics exporter."""
    return {n: s for n, s in _services().items() if s.get("image") == LANES_IMAGE}


def _env_example() -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=VALUE: {line!r}"
            pairs[key.strip()] = value.strip()
    return pairs


def _ports(service: dict[str, Any]) -> list[str]:
    """Published ports as `host_ip:published:target`, whichever syntax the file uses."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append(f"{port.get('host_ip', '')}:{port.get('published', '')}:{port['target']}")
        else:
            out.append(str(port))
    return out


def _volume_targets(service: dict[str, Any]) -> dict[str, str]:
    """Mount target -> `source[:mode]` for the short volume syntax this file uses."""
    targets = {}
    for volume in service.get("volumes", []):
        source, target, *mode = str(volume).split(":")
        targets[target] = ":".join([source, *mode])
    return targets


def _validator() -> jsonschema.Draft7Validator:
    """The spec's schema is draft-07 (its `$schema` URL is one jsonschema does not recognise)."""
    schema = json.loads((ROOT / "ops" / "schemas" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_compose_file_matches_the_compose_spec() -> None:
    _validator().validate(_compose())


def test_schema_catches_a_misspelt_key() -> None:
    """The schema validation above is not vacuous: an unknown service key is refused."""
    broken = _compose()
    broken["services"]["redis"]["read_olny"] = True
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(broken)


def test_compose_has_one_worker_per_lane() -> None:
    lanes = load_config(ROOT / "ops" / "lanes.yaml", env={}).lanes()
    services = _services()
    workers = {name for name in services if name.startswith("worker-")}
    assert workers == {f"worker-{lane}" for lane in lanes}
    for lane in lanes:
        assert services[f"worker-{lane}"]["command"] == ["lanes", "worker", lane]


def test_redis_is_durable_never_evicts_and_needs_a_password() -> None:
    """AOF so queued jobs survive a restart; noeviction so Redis refuses writes instead of
    silently dropping jobs or rate-limit state when memory runs out."""
    redis = _services()["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert "requirepass" in command and "/run/secrets/redis_password" in command
    assert _ports(redis) == ["127.0.0.1:6379:6379"]


def test_compose_redis_password_is_in_no_command_line_or_healthcheck() -> None:
    compose = _compose()
    redis = compose["services"]["redis"]
    shown = json.dumps([redis["command"], redis["healthcheck"], redis.get("environment", {})])
    assert "REDIS_PASSWORD" not in shown  # never interpolated into what ps/inspect show
    assert "-a " not in shown and "--requirepass" not in shown
    assert redis["secrets"] == ["redis_password"]
    assert "REDISCLI_AUTH" in redis["healthcheck"]["test"][1]


def test_secrets_are_files_because_every_service_is_read_only() -> None:
    """Compose refuses an `environment:` or `content:` secret in a read-only service (it would
    copy the value into the read-only root filesystem: docker/compose#12303, #12531), so every
    secret must come from a file, and that file must stay out of the repository."""
    secrets = _compose()["secrets"]
    assert set(secrets) == {
        "redis_password",
        "postgres_password",
        "rabbitmq_password",
        "rabbitmq_cookie",
    }
    for name, secret in secrets.items():
        assert set(secret) == {"file"}, name
        assert secret["file"] == f"./secrets/{name}"


def test_lanes_services_build_the_redis_url_from_the_secret() -> None:
    """Workers, Flower and the exporter reach Redis with the password read from the secret at
    start: it is in no environment `docker inspect` shows and in no argument list."""
    services = _lanes_services()
    assert {"flower", "metrics"} <= set(services) and len(services) >= 7
    for name, service in services.items():
        assert service["secrets"] == ["redis_password"], name
        shell, flags, script, arg0 = service["entrypoint"]
        assert (shell, flags, arg0) == ("/bin/sh", "-ec", "lanes"), name  # -e: no secret, no start
        assert 'P="$$(cat /run/secrets/redis_password)"' in script, name
        assert "redis://:$$P@redis:6379/0" in script, name
        assert script.rstrip().endswith('exec "$$@"'), name
        environment = service["environment"]
        assert "REDIS_URL" not in environment and "REDIS_PASSWORD" not in json.dumps(service)
        assert environment["LANES_PRODUCTION"] == "true", name
        assert environment["LANES_CONFIG"] == "/etc/lanes/lanes.yaml", name
        assert _volume_targets(service)["/etc/lanes/lanes.yaml"] == "./ops/lanes.yaml:ro", name
        assert service["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_compose_workers_call_the_real_providers() -> None:
    services = _services()
    workers = [s for name, s in services.items() if name.startswith("worker-")]
    assert workers and all(w["environment"]["LANES_SIMULATOR__MODE"] == "never" for w in workers)
    keys = {"ANTHROPIC_API_KEY_1", "ANTHROPIC_API_KEY_2", "ANTHROPIC_API_KEY_3", "ZAI_API_KEY"}
    assert all(keys | {"KOALA_API_KEY"} <= set(w["environment"]) for w in workers)


def test_flower_requires_auth_and_a_cookie_secret_on_localhost() -> None:
    """`${VAR:?...}` makes compose itself refuse to start without the value, before `lanes
    flower` would refuse too."""
    flower = _services()["flower"]
    assert flower["command"][:2] == ["lanes", "flower"]
    environment = flower["environment"]
    assert environment["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert environment["FLOWER_COOKIE_SECRET"].startswith("${FLOWER_COOKIE_SECRET:?")
    assert _ports(flower) == ["127.0.0.1:5555:5555"]


def test_every_published_port_is_bound_to_localhost() -> None:
    services = _services()
    published = {name: _ports(service) for name, service in services.items()}
    assert published["prometheus"] and published["postgres"]
    for name, ports in published.items():
        for port in ports:
            assert port.startswith("127.0.0.1:") and port.count(":") == 2, (name, port)


def test_workers_and_exporter_share_the_multiprocess_metrics_directory() -> None:
    compose = _compose()
    services = compose["services"]
    sharing = [n for n in services if n.startswith("worker-")] + ["metrics"]
    for name in sharing:
        service = services[name]
        assert service["environment"]["PROMETHEUS_MULTIPROC_DIR"] == METRICS_DIR, name
        assert _volume_targets(service)[METRICS_DIR] == "metrics", name
    options = compose["volumes"]["metrics"]["driver_opts"]
    assert "uid=10001" in options["o"]  # writable by the image's user, see the Dockerfile
    assert services["metrics"]["command"] == [
        *["lanes", "metrics", "--address", "0.0.0.0", "--port", "9464"]
    ]


def _entrypoint_url(tmp_path: Path, sentinels: str) -> str:
    """The REDIS_URL the lanes services' entrypoint builds, run by a real shell (with the
    secret's path pointing at a file of the test's)."""
    secret = tmp_path / "redis_password"
    secret.write_text("pw\n")
    shell, flags, script, arg0 = _lanes_services()["flower"]["entrypoint"]
    script = script.replace("$$", "$").replace("/run/secrets/redis_password", str(secret))
    run = subprocess.run([shell, flags, script, arg0, "sh", "-c", 'printf %s "$REDIS_URL"'],
                         env={"LANES_SENTINELS": sentinels, "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True)  # fmt: skip
    return run.stdout


def test_the_entrypoint_asks_redis_or_the_sentinels(tmp_path: Path) -> None:
    assert _entrypoint_url(tmp_path, "") == "redis://:pw@redis:6379/0"
    sentinels = "sentinel1:26379;sentinel://sentinel2:26379;sentinel://sentinel3:26379"
    url = _entrypoint_url(tmp_path, sentinels)
    assert url == f"sentinel://:pw@{sentinels}/0"
    nodes = (("sentinel1", 26379), ("sentinel2", 26379), ("sentinel3", 26379))
    assert parse_sentinel(url).nodes == nodes
    assert parse_sentinel(url).password == "pw"


def test_sentinels_monitor_the_primary_with_a_quorum_of_two() -> None:
    services = _services()
    for name in ("sentinel1", "sentinel2", "sentinel3"):
        command = " ".join(services[name]["command"])
        assert "sentinel monitor mymaster redis 6379 2" in command, name
        assert "--sentinel" in command and "/run/secrets/redis_password" in command, name
    replica = " ".join(services["redis-replica"]["command"])
    assert "--replicaof redis 6379" in replica and "masterauth" in replica


def test_rabbitmq_nodes_form_one_cluster_of_quorum_queues_from_their_secrets() -> None:
    services = _services()
    for name in ("rabbitmq1", "rabbitmq2", "rabbitmq3"):
        node = services[name]
        command = " ".join(node["command"])
        assert node["hostname"] == name
        for i in (1, 2, 3):
            assert f"classic_config.nodes.{i} = rabbit@rabbitmq{i}" in command, name
        assert "default_queue_type = quorum" in command
        for secret in ("rabbitmq_password", "rabbitmq_cookie"):
            assert f"/run/secrets/{secret}" in command, name
        assert sorted(node["secrets"]) == ["rabbitmq_cookie", "rabbitmq_password"]
        assert _volume_targets(node)["/var/lib/rabbitmq"] == f"{name}-data"
        assert "ports" not in node  # reached by the lanes services on the compose network
    for name, service in _lanes_services().items():
        assert service["environment"]["LANES_BROKER__URL"] == "${LANES_BROKER__URL:-}", name


def test_profiles_postgres_prometheus_and_sentinel() -> None:
    """Each is opt-in; nothing that always runs may require them."""
    services = _services()
    for name, profile in PROFILED.items():
        assert services[name]["profiles"] == [profile]
    for name, service in services.items():
        if name not in PROFILED:
            assert "profiles" not in service, name
            for dependency, how in service.get("depends_on", {}).items():
                if dependency in PROFILED:
                    assert how["required"] is False, (name, dependency)


def test_postgres_takes_its_password_from_a_secret_and_workers_opt_in() -> None:
    services = _services()
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    assert postgres["secrets"] == ["postgres_password"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert _volume_targets(postgres)["/var/lib/postgresql/data"] == "postgres-data"
    assert "/var/run/postgresql" in postgres["tmpfs"]  # its socket, on a read-only root
    for name, service in services.items():
        if name.startswith("worker-"):
            assert service["environment"]["LANES_DATABASE_URL"] == "${LANES_DATABASE_URL:-}"


def test_prometheus_mounts_the_ops_config_and_rules_read_only() -> None:
    """The rule files the config names must be exactly the files compose mounts beside it."""
    prometheus = _services()["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:v")
    mounts = _volume_targets(prometheus)
    assert mounts["/etc/prometheus/prometheus.yml"] == "./ops/prometheus.yml:ro"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = yaml.safe_load((ROOT / "ops" / "prometheus.yml").read_text())
    assert config["rule_files"]
    for rule_file in config["rule_files"]:
        assert mounts[f"/etc/prometheus/{rule_file}"] == f"./ops/{rule_file}:ro"
    assert _volume_targets(prometheus)["/prometheus"] == "prometheus-data"


def test_compose_every_service_is_hardened() -> None:
    """Read-only root, no capabilities, no privilege escalation and a non-root user for every
    service, the optional ones included: what each writes goes to a volume or a tmpfs."""
    services = _services()
    assert {"redis", "flower", "metrics", "postgres", "prometheus"} <= set(services)
    for name, service in services.items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert "/tmp" in service.get("tmpfs", []), name
        assert "cap_add" not in service and "privileged" not in service, name
        if service.get("image") == LANES_IMAGE:
            assert "user" not in service, name  # the image's USER, checked below
        else:
            user = str(service["user"]).split(":")[0]
            assert user not in {"0", "root"}, name


def test_every_compose_variable_is_listed_in_env_example_and_no_other() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    read = set(COMPOSE_VAR.findall(text))
    assert {"FLOWER_BASIC_AUTH", "FLOWER_COOKIE_SECRET", "LANES_DATABASE_URL"} <= read
    assert set(_env_example()) == read


def test_env_example_holds_no_secret() -> None:
    """Every value is empty: a placeholder that looks like a secret ends up deployed."""
    example = _env_example()
    assert any(SECRET_NAME.search(key) for key in example)
    for key, value in example.items():
        assert value == "", f".env.example sets {key}; leave it empty"


def test_dockerfile_runs_as_a_non_root_user_and_bakes_in_no_secret() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert users, "the Dockerfile sets no USER: the image would run as root"
    assert users[-1].split(":")[0] not in {"0", "root"}
    assert users[-1].split(":")[0] == "10001"  # the uid the metrics volume is owned by
    copied = [line.split()[1:-1] for line in lines if line.upper().startswith(("COPY ", "ADD "))]
    for sources in copied:
        for source in sources:
            assert source not in {".", "./", ".env", "secrets"}, f"COPY {source} may bake secrets"
    for line in lines:
        if line.upper().startswith(("ENV ", "ARG ")):
            assert not SECRET_NAME.search(line.split(maxsplit=1)[1]), line
    assert not any("pip install" in line and " -e " in line for line in lines)
