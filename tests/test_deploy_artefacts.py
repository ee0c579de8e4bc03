"""The shipped deployment files, checked as an operator's tools would check them, with no Docker engine or
cluster: hadolint on the Dockerfile, the compose-spec schema on compose.yaml, `kubectl kustomize` and the
Kubernetes API schemas on the overlays, actionlint on the workflow, shellcheck on the scripts. Each check
is also shown failing on a broken copy, so a pass means something."""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from deploy_files import (
    ROOT,
    by_kind,
    compose,
    dockerfile_instructions,
    env_file,
    final_stage,
    healthcheck,
    image_command,
    render_overlay,
    run,
    tool,
)

from mcplookup_mcp.core.settings import load_settings

K8S_VERSION = "1.30.0"
OVERLAYS = ("staging", "production")

# Dockerfile -----------------------------------------------------------------------------------------


def _hadolint(path: Path) -> str:
    result = run(tool("hadolint"), "--no-color", "--failure-threshold", "info", str(path))
    return "" if result.returncode == 0 else result.stdout + result.stderr


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    assert _hadolint(ROOT / "Dockerfile") == ""


def test_hadolint_flags_a_named_user_and_a_shell_form_entrypoint(tmp_path: Path) -> None:
    text = (ROOT / "Dockerfile").read_text()
    broken = text.replace("USER 10001:10001", "USER mcplookup").replace(
        'ENTRYPOINT ["/usr/bin/tini", "--"]', "ENTRYPOINT /usr/bin/tini --"
    )
    assert broken != text
    (tmp_path / "Dockerfile").write_text(broken)
    found = _hadolint(tmp_path / "Dockerfile")
    assert "DL3066" in found and "DL3025" in found


def test_the_image_runs_under_an_init_process_as_a_numeric_non_root_user() -> None:
    entrypoint, cmd = image_command()
    assert entrypoint == ["/usr/bin/tini", "--"]
    assert cmd == ["mcplookup", "serve"]
    stage = final_stage()
    assert any(word == "RUN" and "tini=" in rest for word, rest in stage), "tini is installed pinned"
    (user,) = [rest for word, rest in stage if word == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_the_healthcheck_reads_port_and_allows_for_start_up() -> None:
    options, command = healthcheck()
    assert {"interval", "timeout", "start-period", "retries"} <= options.keys()
    assert int(options["start-period"].rstrip("s")) >= 30
    script = command[-1]
    assert "os.environ" in script and "PORT" in script and "/health" in script
    assert "8000/" not in script, "the port must come from PORT at check time"


def test_the_final_stage_has_no_compiler_cache_or_source_tree() -> None:
    stage = final_stage()
    text = "\n".join(f"{word} {rest}" for word, rest in stage)
    for word in ("gcc", "build-essential", "g++", "make ", "python3-dev"):
        assert word not in text
    for word, rest in stage:
        if word == "RUN" and "pip install" in rest:
            assert "--no-cache-dir" in rest and "rm -rf /wheels" in rest
        if word == "RUN" and "apt-get install" in rest:
            assert "--no-install-recommends" in rest and "rm -rf /var/lib/apt/lists/*" in rest
        if word == "COPY":
            # The wheels, and the embedding model's directory (its weights and tokenizer, no code).
            assert rest.startswith(("--from=build /wheels", "--from=build /model ")), (
                f"only wheels and the model enter the final stage: {rest}"
            )
    (base,) = [rest for word, rest in dockerfile_instructions() if word == "ARG" and "PYTHON_IMAGE" in rest]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.\d+\.\d+-slim-\w+", base), (
        f"base pinned to a release: {base}"
    )


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything is excluded first, then the build's inputs allowed back"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "mcplookup_mcp", "sql", "scripts/extract_model.py"}
    copied = {
        part.rstrip("/").removeprefix("./")
        for word, rest in dockerfile_instructions()
        if word == "COPY" and not rest.startswith("--from")
        for part in rest.split()[:-1]
    }
    assert copied <= allowed, f"the build copies {copied - allowed}, which .dockerignore excludes"


# compose.yaml -----------------------------------------------------------------------------------------


def _compose_errors(document: Any) -> list[str]:
    # The compose-spec JSON schema as vendored by check-jsonschema (Apache-2.0, see its
    # vendor/licenses/LICENSE.compose-spec).
    path = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema = json.loads(path.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_matches_the_compose_spec_schema() -> None:
    assert _compose_errors(compose()) == []


def test_the_compose_schema_check_rejects_a_broken_file() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["app"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["redis"]["healthcheck"]["intervall"] = "5s"
    errors = _compose_errors(broken)
    assert any("service_finished" in e for e in errors) and any("intervall" in e for e in errors)


def test_compose_services_start_in_order_on_health() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "postgres-standby", "redis", "migrate", "app", "nginx"}
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    assert services["app"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["command"] == ["mcplookup", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["nginx"]["depends_on"]["app"] == {"condition": "service_healthy"}
    app = services["app"]
    assert app["deploy"]["replicas"] >= 2
    assert {"cpus", "memory"} <= app["deploy"]["resources"]["limits"].keys()
    networks = compose()["networks"]
    for name, service in services.items():
        for network in service.get("networks") or []:
            assert network in networks, f"{name} uses undeclared network {network}"


def test_compose_standby_is_optional_and_streams_from_the_primary_through_its_slot() -> None:
    document = compose()
    standby = document["services"]["postgres-standby"]
    # Only with `--profile standby`; nothing else waits for it, so without it the stack is as before.
    assert standby["profiles"] == ["standby"]
    assert all("postgres-standby" not in (s.get("depends_on") or {}) for s in document["services"].values())
    assert standby["image"] == document["services"]["postgres"]["image"]
    assert standby["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    script = (ROOT / "deploy" / "postgres" / "standby.sh").read_text()
    primary = (ROOT / "deploy" / "postgres" / "replication-primary.sh").read_text()
    assert "--write-recovery-conf" in script and "--slot=mcplookup_standby" in script
    assert "pg_create_physical_replication_slot('mcplookup_standby')" in primary
    assert "host replication replicator all scram-sha-256" in primary
    mounted = [v.split(":")[0] for v in document["services"]["postgres"]["volumes"]]
    assert "./deploy/postgres/replication-primary.sh" in mounted
    # An empty DATABASE_READ_URL (no standby) reads everything on the primary.
    assert load_settings({"DATABASE_READ_URL": ""}).database_read_urls == ()
    assert document["x-app"]["environment"]["DATABASE_READ_URL"] == "${DATABASE_READ_URL:-}"


def test_compose_redis_keeps_an_append_only_file_behind_a_password() -> None:
    command = compose()["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    assert "${REDIS_PASSWORD:?" in compose()["x-app"]["environment"]["REDIS_URL"]


def test_compose_trusts_only_nginx_for_forwarded_addresses() -> None:
    document = compose()
    trusted = document["x-app"]["environment"]["MCPLOOKUP_TRUSTED_PROXIES"]
    assert "*" not in trusted
    nginx_ip = document["services"]["nginx"]["networks"]["edge"]["ipv4_address"]
    subnet = ipaddress.ip_network(document["networks"]["edge"]["ipam"]["config"][0]["subnet"])
    assert ipaddress.ip_address(nginx_ip) in subnet
    assert [ipaddress.ip_network(part.strip()) for part in trusted.split(",")] == [
        ipaddress.ip_network(f"{nginx_ip}/32")
    ]


def test_env_example_lists_every_variable_compose_reads_and_no_other() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", (ROOT / "compose.yaml").read_text()))
    listed = set(env_file(ROOT / ".env.example"))
    assert used == listed


def test_compose_settings_load_as_the_app_would_read_them() -> None:
    document = compose()
    values = env_file(ROOT / document["x-app"]["env_file"][0])
    example = env_file(ROOT / ".env.example")
    environment = {
        key: re.sub(r"\$\{([A-Z0-9_]+)[^}]*\}", lambda m: example[m.group(1)], value)
        for key, value in document["x-app"]["environment"].items()
    }
    settings = load_settings(values | environment)
    assert settings.is_production and settings.redis_url and settings.database_url
    assert settings.auto_discovery and settings.metrics_enabled
    assert settings.public_url == example["MCPLOOKUP_PUBLIC_URL"]


# env files -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_env_files_load_and_every_variable_in_them_is_read(name: str) -> None:
    values = env_file(ROOT / "deploy" / f"{name}.env")
    settings = load_settings(values)
    assert settings.env == name
    assert settings.log_level == values["LOG_LEVEL"].upper()
    assert settings.auto_discovery is (values["FEATURE_AUTO_DISCOVERY"] == "true")
    assert settings.rate_limit_per_minute == int(values["RATE_LIMIT_MAX_REQUESTS"])
    assert settings.probe_interval_seconds == float(values["MCPLOOKUP_PROBE_INTERVAL_SECONDS"])
    # Every name is one the loader reads: the seed's names (seed_env.py) or a MCPLOOKUP_ / usual one.
    settings_source = (ROOT / "mcplookup_mcp" / "core" / "settings.py").read_text()
    seed_source = (ROOT / "mcplookup_mcp" / "core" / "seed_env.py").read_text()
    for key in values:
        assert f'"{key}"' in settings_source or f'"{key}"' in seed_source, f"{key} is read nowhere"


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_overlay_env_file_is_a_copy_of_the_deploy_one(name: str) -> None:
    assert (ROOT / "k8s" / "overlays" / name / f"{name}.env").read_text() == (
        ROOT / "deploy" / f"{name}.env"
    ).read_text()


# Kubernetes -------------------------------------------------------------------------------------------


def _k8s_errors(docs: list[dict[str, Any]]) -> list[str]:
    errors: list[str] = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    return errors


@pytest.mark.parametrize("name", OVERLAYS)
def test_each_overlay_renders_to_valid_kubernetes_objects(name: str) -> None:
    docs = render_overlay(name)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "Namespace",
            "ConfigMap",
            "Service",
            "Deployment",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
            "Job",
            "Ingress",
            "NetworkPolicy",
        ]
    )
    assert _k8s_errors(docs) == []
    namespace = by_kind(docs, "Namespace")["metadata"]["name"]
    assert all(d["metadata"].get("namespace", namespace) == namespace for d in docs)


def test_the_standby_overlay_adds_a_valid_streaming_standby_to_production() -> None:
    docs = render_overlay("production-standby")
    production = render_overlay("production")
    assert _k8s_errors(docs) == []
    added = sorted((d["kind"], d["metadata"]["name"]) for d in docs if d not in production)
    assert [(kind, name.rsplit("-", 1)[0] if kind == "ConfigMap" else name) for kind, name in added] == [
        ("ConfigMap", "postgres-standby-script"),
        ("NetworkPolicy", "postgres-standby"),
        ("Service", "postgres-standby"),
        ("StatefulSet", "postgres-standby"),
    ]
    standby = by_kind(docs, "StatefulSet")
    pod = standby["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "mcplookup-replication"}}]
    script = next(d for d in docs if d["kind"] == "ConfigMap" and "standby" in d["metadata"]["name"])
    assert script["data"]["standby.sh"] == (ROOT / "deploy" / "postgres" / "standby.sh").read_text()
    assert (ROOT / "k8s" / "overlays" / "production-standby" / "standby.sh").read_text() == script["data"][
        "standby.sh"
    ]


def test_the_secret_example_is_a_valid_secret() -> None:
    doc = yaml.safe_load((ROOT / "k8s" / "base" / "secret.example.yaml").read_text())
    assert _k8s_errors([doc]) == []
    assert set(doc["stringData"]) == {"DATABASE_URL", "REDIS_URL", "MCPLOOKUP_CURSOR_SECRET"}


def test_the_kubernetes_schema_check_rejects_a_broken_object() -> None:
    docs = render_overlay("production")
    deployment = copy.deepcopy(by_kind(docs, "Deployment"))
    deployment["spec"]["replicas"] = "three"
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    assert len(_k8s_errors([deployment])) == 1


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_deployment_probes_limits_and_locks_down_its_pods(name: str) -> None:
    docs = render_overlay(name)
    pod = by_kind(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert re.fullmatch(r"[\w./-]+:[\w.-]+", container["image"]) and not container["image"].endswith(
        ":latest"
    )
    _entrypoint, cmd = image_command()
    assert "command" not in container, "the image's init process must stay PID 1"
    assert container["args"] == cmd
    config_name = by_kind(docs, "ConfigMap")["metadata"]["name"]
    assert {"configMapRef": {"name": config_name}} in container["envFrom"], "the hashed ConfigMap is used"
    assert {"secretRef": {"name": "mcplookup-secrets"}} in container["envFrom"]
    job = by_kind(docs, "Job")["spec"]["template"]["spec"]["containers"][0]
    assert {"configMapRef": {"name": config_name}} in job["envFrom"]
    assert job["args"] == compose()["services"]["migrate"]["command"]
    assert "command" not in job
    # The autoscaler owns the replica count: one in the Deployment would reset it at every apply.
    hpa = by_kind(docs, "HorizontalPodAutoscaler")["spec"]
    assert "replicas" not in by_kind(docs, "Deployment")["spec"]
    assert hpa["scaleTargetRef"]["name"] == by_kind(docs, "Deployment")["metadata"]["name"]
    assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_overlay_config_names_the_ingress_as_the_only_proxy(name: str) -> None:
    docs = render_overlay(name)
    config = by_kind(docs, "ConfigMap")["data"]
    trusted = config["MCPLOOKUP_TRUSTED_PROXIES"]
    assert "*" not in trusted
    networks = [ipaddress.ip_network(part.strip()) for part in trusted.split(",")]
    assert networks and all(net.num_addresses < 2**24 for net in networks)
    # The whole env file reaches the pods, and the settings they make load.
    expected = env_file(ROOT / "deploy" / f"{name}.env")
    assert {k: config[k] for k in expected} == expected
    settings = load_settings(config)
    host = by_kind(docs, "Ingress")["spec"]["rules"][0]["host"]
    assert settings.public_url == f"https://{host}" and host in settings.allowed_hosts
    policy = by_kind(docs, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]


def test_the_shipped_manifests_used_to_trust_every_proxy() -> None:
    """The defect of issue 20 stays fixed: no shipped file sets MCPLOOKUP_TRUSTED_PROXIES to "*"."""
    for path in [
        ROOT / "compose.yaml",
        *sorted((ROOT / "k8s").rglob("*.yaml")),
        *(ROOT / "deploy").glob("*.env"),
    ]:
        text = path.read_text()
        assert not re.search(r"MCPLOOKUP_TRUSTED_PROXIES\s*[:=]\s*[\"']?\*", text), path


def test_rollout_renders_the_release_with_its_image_tag() -> None:
    env = {"PATH": f"{Path(tool('kubectl')).parent}:/usr/bin:/bin", "IMAGE": "registry.test/mcplookup"}
    result = run("bash", str(ROOT / "deploy" / "rollout.sh"), "staging", "1.2.3-abc", "--render", env=env)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    images = {
        c["image"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.test/mcplookup:1.2.3-abc"}
    assert not list((ROOT / "k8s" / "overlays").glob(".release-*")), "the throwaway overlay is removed"
    bad = run("bash", str(ROOT / "deploy" / "rollout.sh"), "staging", "1.2.3;rm", "--render", env=env)
    assert bad.returncode == 2 and "not a valid image tag" in bad.stderr


# CI workflow and scripts ------------------------------------------------------------------------------


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows
    result = run(tool("actionlint"), "-no-color", *map(str, workflows), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    broken = text.replace("needs: image\n", "needs: imgae\n", 1).replace("runs-on:", "runs_on:", 1)
    assert broken != text
    (workflows / "ci.yml").write_text(broken)
    result = run(tool("actionlint"), "-no-color", str(workflows / "ci.yml"), cwd=tmp_path)
    assert result.returncode == 1
    assert "imgae" in result.stdout and "runs_on" in result.stdout


def test_the_workflow_runs_the_readme_test_with_postgres_and_redis() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    test = workflow["jobs"]["test"]
    assert {"postgres", "redis"} <= test["services"].keys()
    assert any("bash .ci/run" in step.get("run", "") for step in test["steps"])
    deploys = [job for name, job in workflow["jobs"].items() if name.startswith("deploy-")]
    assert deploys and all("deploy/rollout.sh" in job["steps"][-1]["run"] for job in deploys)


def test_shellcheck_finds_nothing_in_the_deploy_script() -> None:
    scripts = [ROOT / "deploy" / "rollout.sh", *sorted((ROOT / "deploy" / "postgres").glob("*.sh"))]
    result = run(tool("shellcheck"), *map(str, scripts))
    assert result.returncode == 0, result.stdout
