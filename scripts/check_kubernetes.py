"""Checks rendered Kubernetes manifests (`kubectl kustomize` output) for what Bestow needs and
what the schemas cannot say: hardened, non-root, read-only pods; the health probes; metrics
on an unpublished port with scrape annotations; a grace period above the drain timeout; no
secret in a plain value; every BESTOW_* variable a real setting; the service URLs naming
Services of the right process; the all-in-one server alone on its volume; events autoscaled
and guarded by a PodDisruptionBudget; auth's signing keys from a Secret.

Usage: check_kubernetes.py CONFIG_RS NAME=RENDERED.yaml... [--self-test]
CONFIG_RS is crates/bestow/src/config.rs (the settings and the drain timeout's default).
--self-test also breaks the split and all-in-one renderings in known ways and fails unless\neach is caught by the rule meant for it.
"""

from __future__ import annotations

import copy
import re
import sys
from urllib.parse import urlsplit

import yaml

UID = 10001
COMMANDS = {"serve", "auth", "events", "gateway"}
# Settings that are secrets: only ever from a Secret.
SECRET_SETTINGS = {"internal_secret", "mongodb_uri", "admin_password", "webhook_secret", "facts_secret"}
SECRETISH = re.compile(r"SECRET|PASSWORD|TOKEN|_URI$|CREDENTIAL")
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}


def struct_fields(text: str, struct: str) -> list[tuple[str, str]] | None:
    """(name, type) of each field of `pub struct <struct>`, a field's name as serde names it
    (its `#[serde(rename = "…")]` when it has one)."""
    body = re.search(rf"pub struct {struct} \{{(.*?)\n\}}", text, re.DOTALL)
    if not body:
        return None
    fields, rename = [], None
    for line in body.group(1).splitlines():
        renamed = re.match(r'\s*#\[serde\(rename = "(\w+)"\)\]', line)
        field = re.match(r"\s*pub (\w+): (\w+)", line)
        if renamed:
            rename = renamed.group(1)
        elif field:
            fields.append((rename or field.group(1), field.group(2)))
            rename = None
    return fields


def settings_of(config_rs: str) -> tuple[set[str], int]:
    """The setting names of `struct Config` (the fields of its flattened groups) and the default
    of drain_timeout_ms (ms). Where the configuration reads `BESTOW_<NAME>_FILE` (a setting from
    a file), `<name>_file` counts too."""
    with open(config_rs, encoding="utf-8") as f:
        text = f.read()
    groups = struct_fields(text, "Config")
    if groups is None:
        raise SystemExit(f"{config_rs}: no `pub struct Config`")
    names = set()
    for _, group in groups:
        fields = struct_fields(text, group)
        if fields is None:
            raise SystemExit(f"{config_rs}: no `pub struct {group}` (a group of `Config`)")
        names |= {name for name, _ in fields}
    default = re.search(r"drain_timeout_ms: ([\d_]+),", text)
    if not names or not default:
        raise SystemExit(f"{config_rs}: cannot read the settings or the drain timeout's default")
    if '"_FILE"' in text:
        names |= {f"{name}_file" for name in names}
    return names, int(default.group(1).replace("_", ""))


class Render:
    def __init__(self, name: str, docs: list[dict]):
        self.name = name
        self.docs = [d for d in docs if d]
        self.errors: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.errors.append(f"{self.name}: {where}: {message}")

    def of_kind(self, *kinds: str) -> list[dict]:
        return [d for d in self.docs if d.get("kind") in kinds]

    def config_map(self, name: str) -> dict:
        for d in self.of_kind("ConfigMap"):
            if d["metadata"]["name"] == name:
                return d.get("data") or {}
        return {}


def matches(selector: dict, labels: dict) -> bool:
    """Whether a selector (a Service's flat map, or one with matchLabels) selects labels."""
    wanted = selector.get("matchLabels") if "matchLabels" in selector else selector
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def command_of(container: dict) -> str | None:
    args = (container.get("command") or []) + (container.get("args") or [])
    found = [a for a in args if a in COMMANDS]
    return found[0] if found else None


def environment(render: Render, where: str, container: dict) -> dict[str, dict]:
    """Each variable the container gets: name -> {"value": ...} or {"secret": ...} or
    {"from": "configmap"}; ConfigMap values are looked up in the rendering."""
    env: dict[str, dict] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            data = render.config_map(name)
            if not data:
                render.fail(where, f"envFrom names ConfigMap {name!r}, which is not in the rendering")
            for key, value in data.items():
                env[key] = {"value": str(value), "configmap": name}
        elif "secretRef" in source:
            render.fail(where, "envFrom a whole Secret: name each secret variable with secretKeyRef")
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = {"value": str(item["value"])}
        elif "secretKeyRef" in (item.get("valueFrom") or {}):
            env[item["name"]] = {"secret": item["valueFrom"]["secretKeyRef"]}
        else:
            env[item["name"]] = {"other": item.get("valueFrom")}
    return env


def check_env(render: Render, where: str, env: dict[str, dict], settings: set[str]) -> None:
    for name, source in env.items():
        if name.startswith("BESTOW_"):
            key = name[len("BESTOW_") :].lower()
            if key not in settings and key != "config":
                render.fail(where, f"{name} is no setting of crates/bestow/src/config.rs (the process would refuse it)")
            if key in SECRET_SETTINGS and "secret" not in source:
                render.fail(where, f"{name} must come from a Secret (secretKeyRef), not a plain value or a ConfigMap")
        # A BESTOW_<NAME>_FILE variable holds a path (a mounted Secret's file), not the secret.
        if SECRETISH.search(name) and "value" in source and not name.endswith("_FILE"):
            render.fail(where, f"{name} looks like a secret and has a plain value")


def effective(pod: dict, container: dict, key: str):
    own = (container.get("securityContext") or {}).get(key)
    return own if own is not None else (pod.get("securityContext") or {}).get(key)


def check_container(render: Render, where: str, pod: dict, container: dict) -> None:
    sc = container.get("securityContext") or {}
    if sc.get("readOnlyRootFilesystem") is not True:
        render.fail(where, "securityContext.readOnlyRootFilesystem must be true")
    if sc.get("allowPrivilegeEscalation") is not False:
        render.fail(where, "securityContext.allowPrivilegeEscalation must be false")
    if sc.get("privileged"):
        render.fail(where, "must not be privileged")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        render.fail(where, "securityContext.capabilities.drop must contain ALL")
    if caps.get("add"):
        render.fail(where, f"adds capabilities {caps['add']}")
    if effective(pod, container, "runAsNonRoot") is not True:
        render.fail(where, "runAsNonRoot must be true")
    if effective(pod, container, "runAsUser") != UID:
        render.fail(where, f"runAsUser must be {UID} (the image's user)")
    seccomp = effective(pod, container, "seccompProfile") or {}
    if seccomp.get("type") != "RuntimeDefault":
        render.fail(where, "seccompProfile.type must be RuntimeDefault")
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in (resources.get(kind) or {}):
                render.fail(where, f"resources.{kind}.{resource} is missing")


def port_number(container: dict, port) -> int | None:
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p["containerPort"]
    return None


def address_port(value: str) -> int | None:
    match = re.fullmatch(r".*:(\d+)", value.strip())
    return int(match.group(1)) if match else None


def writable_mounts(pod: dict, workload: dict, container: dict) -> dict[str, str]:
    """mount path -> volume type, for the container's writable mounts."""
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates") or []}
    out = {}
    for mount in container.get("volumeMounts") or []:
        if mount.get("readOnly"):
            continue
        name = mount["name"]
        if name in claims:
            out[mount["mountPath"]] = "persistentVolumeClaim"
        elif name in volumes:
            kinds = [k for k in volumes[name] if k != "name"]
            out[mount["mountPath"]] = kinds[0] if kinds else "?"
    return out


def check_workload(render: Render, workload: dict, settings: set[str], drain_default_ms: int) -> list[tuple]:
    kind, name = workload["kind"], workload["metadata"]["name"]
    where = f"{kind}/{name}"
    pod = pod_spec(workload)
    template = workload["spec"]["template"]
    if pod.get("enableServiceLinks") is not False:
        render.fail(where, "enableServiceLinks must be false: the Services' BESTOW_*_PORT variables stop the process")
    if pod.get("automountServiceAccountToken") is not False:
        render.fail(where, "automountServiceAccountToken must be false: Bestow does not call the API server")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            render.fail(where, f"{flag} must not be set")
    if (pod.get("securityContext") or {}).get("fsGroup") != UID:
        render.fail(where, f"securityContext.fsGroup must be {UID}, so that the volumes are writable")
    for volume in pod.get("volumes") or []:
        if "hostPath" in volume:
            render.fail(where, f"volume {volume['name']} is a hostPath")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    processes = []
    for container in (pod.get("initContainers") or []) + pod.get("containers", []):
        cwhere = f"{where} container {container['name']}"
        check_container(render, cwhere, pod, container)
        env = environment(render, cwhere, container)
        check_env(render, cwhere, env, settings)
        command = command_of(container)
        if container in (pod.get("initContainers") or []):
            continue
        if command is None:
            render.fail(cwhere, "runs no bestow command (serve, auth, events, gateway)")
            continue

        def value(key: str, env: dict[str, dict] = env) -> str | None:
            return (env.get(f"BESTOW_{key.upper()}") or {}).get("value")

        # Probes on the process's own listener.
        listen_port = address_port(value("listen") or "")
        if listen_port is None:
            render.fail(cwhere, "BESTOW_LISTEN must be set (the image's default is 0.0.0.0:8080; say it)")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = (container.get(probe) or {}).get("httpGet") or {}
            if get.get("path") != path:
                render.fail(cwhere, f"{probe} must be an httpGet of {path}")
            elif port_number(container, get.get("port")) != listen_port:
                render.fail(cwhere, f"{probe} must probe the listener's port {listen_port}")
        # Metrics on a port of their own, announced for scraping.
        metrics = value("metrics_listen")
        metrics_port = address_port(metrics or "")
        if not metrics or not metrics.startswith("0.0.0.0:") or metrics_port == listen_port:
            render.fail(cwhere, "BESTOW_METRICS_LISTEN must be 0.0.0.0:<a port of its own>")
        elif port_number(container, "metrics") != metrics_port:
            render.fail(cwhere, f"needs a container port named `metrics` = {metrics_port}")
        annotations = template["metadata"].get("annotations") or {}
        if metrics_port is not None and (
            annotations.get("prometheus.io/scrape") != "true"
            or annotations.get("prometheus.io/port") != str(metrics_port)
            or annotations.get("prometheus.io/path") != "/metrics"
        ):
            render.fail(where, f"pod annotations prometheus.io/scrape, /port ({metrics_port}), /path (/metrics)")
        # Stopping: preStop pause + drain, within the grace period.
        drain_ms = int(value("drain_timeout_ms") or drain_default_ms)
        pause = (((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds", 0)
        if grace <= drain_ms / 1000 + pause:
            render.fail(
                where,
                f"terminationGracePeriodSeconds ({grace}) must exceed the preStop pause ({pause} s)"
                f" plus drain_timeout_ms ({drain_ms} ms)",
            )
        # The data dir: a directory the process makes (and narrows to 0700) on a writable volume.
        mounts = writable_mounts(pod, workload, container)
        data_dir = (value("data_dir") or "").rstrip("/")
        if command in ("serve", "auth", "events"):
            under = [m for m in mounts if data_dir.startswith(m.rstrip("/") + "/")]
            if not data_dir.startswith("/") or not under:
                render.fail(
                    cwhere,
                    f"BESTOW_DATA_DIR ({data_dir or 'unset'}) must be a subdirectory of a writable volume:"
                    " the process narrows it to 0700, which it cannot do to a volume's root",
                )
            elif command == "serve" and mounts[under[0]] != "persistentVolumeClaim":
                render.fail(cwhere, f"the SQLite data dir must be on a persistent volume, not {mounts[under[0]]}")
        if "/tmp" not in mounts:
            render.fail(cwhere, "needs a writable /tmp (an emptyDir): the root file system is read-only")
        # What each command cannot start without.
        storage = value("storage") or "sqlite"
        required = {
            "serve": [],
            "auth": ["internal_secret"],
            "events": ["auth_url", "internal_secret"],
            "gateway": ["auth_url", "events_url", "internal_secret"],
        }[command]
        if command in ("auth", "events"):
            if storage != "mongodb":
                render.fail(cwhere, "split mode runs on MongoDB here: BESTOW_STORAGE=mongodb")
            required = required + ["mongodb_uri"]
        for key in required:
            if f"BESTOW_{key.upper()}" not in env and f"BESTOW_{key.upper()}_FILE" not in env:
                render.fail(cwhere, f"`bestow {command}` needs BESTOW_{key.upper()}")
        processes.append((workload, container, command, env))
    return processes


def services_for(render: Render, host: str, port: int) -> list[tuple[dict, dict]]:
    """(Service, port entry) named host with that port."""
    short = host.split(".")[0]
    return [
        (s, p)
        for s in render.of_kind("Service")
        if s["metadata"]["name"] == short
        for p in s["spec"].get("ports") or []
        if p["port"] == port
    ]


def check_render(render: Render, settings: set[str], drain_default_ms: int) -> None:
    if render.of_kind("Secret"):
        render.fail("Secret", "no Secret belongs in the manifests: they are created apart (docs/operations.md)")
    for ns in render.of_kind("Namespace"):
        if (ns["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce") != "restricted":
            render.fail(f"Namespace/{ns['metadata']['name']}", "must enforce the restricted Pod Security Standard")
    processes = []
    for workload in render.of_kind(*WORKLOADS):
        processes += check_workload(render, workload, settings, drain_default_ms)
    commands = {command for _, _, command, _ in processes}
    if not commands:
        render.fail("rendering", "runs no Bestow process")
    if "serve" in commands and commands != {"serve"}:
        render.fail("rendering", f"mixes all-in-one with split mode: {sorted(commands)}")
    if commands & {"auth", "events", "gateway"} and commands != {"auth", "events", "gateway"}:
        render.fail("rendering", f"split mode needs auth, events and gateway; runs {sorted(commands)}")

    def pods_of(service: dict) -> list[tuple]:
        selector = service["spec"].get("selector") or {}
        return [p for p in processes if matches(selector, p[0]["spec"]["template"]["metadata"].get("labels") or {})]

    # Services: they select a Bestow process, and none publishes its metrics port.
    for service in render.of_kind("Service"):
        where = f"Service/{service['metadata']['name']}"
        targets = pods_of(service)
        if not targets:
            render.fail(where, "selects no Bestow pod")
        for entry in service["spec"].get("ports") or []:
            target = entry.get("targetPort", entry["port"])
            for _, container, _, env in targets:
                number = port_number(container, target)
                metrics_port = address_port((env.get("BESTOW_METRICS_LISTEN") or {}).get("value") or "")
                if number is None:
                    render.fail(where, f"targetPort {target} is no port of container {container['name']}")
                elif number == metrics_port:
                    render.fail(where, f"publishes the metrics port {number}: /metrics stays off the Services")

    # The service URLs name Services in front of the right process.
    for workload, container, command, env in processes:
        for key, wanted in (("BESTOW_AUTH_URL", "auth"), ("BESTOW_EVENTS_URL", "events")):
            source = env.get(key)
            if not source:
                continue
            for url in filter(None, (u.strip() for u in source.get("value", "").split(","))):
                parts = urlsplit(url)
                where = f"{workload['kind']}/{workload['metadata']['name']} {key}"
                found = services_for(render, parts.hostname or "", parts.port or 80)
                if not found:
                    render.fail(where, f"{url} names no Service of this rendering with that port")
                    continue
                service, entry = found[0]
                behind = {c for _, _, c, _ in pods_of(service)}
                if behind != {wanted}:
                    render.fail(where, f"{url} reaches {sorted(behind)}, not {wanted}")
                if service["spec"].get("clusterIP") == "None":
                    render.fail(where, f"{url} is a headless Service: use the ClusterIP one (docs/operations.md)")

    hpas = render.of_kind("HorizontalPodAutoscaler")
    pdbs = render.of_kind("PodDisruptionBudget")
    for workload, container, command, env in processes:
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        labels = workload["spec"]["template"]["metadata"].get("labels") or {}
        spec = workload["spec"]
        if command == "serve":
            # One process on the SQLite files, never two, not even during a rollout.
            if spec.get("replicas") != 1:
                render.fail(where, "the all-in-one server runs exactly one replica (replicas: 1)")
            if workload["kind"] == "Deployment" and (spec.get("strategy") or {}).get("type") != "Recreate":
                render.fail(where, "a Deployment of the all-in-one server needs strategy Recreate")
            if workload["kind"] not in ("StatefulSet", "Deployment"):
                render.fail(where, "all-in-one runs as a StatefulSet (or a Deployment with Recreate)")
            if any(h["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"] for h in hpas):
                render.fail(where, "the all-in-one server must not be autoscaled")
            continue
        if not any(matches(p["spec"]["selector"], labels) for p in pdbs):
            render.fail(where, "no PodDisruptionBudget covers its pods")
        if command == "events":
            scalers = [
                h
                for h in hpas
                if h["spec"]["scaleTargetRef"]["kind"] == workload["kind"]
                and h["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"]
            ]
            if not scalers:
                render.fail(where, "events needs a HorizontalPodAutoscaler")
            elif scalers[0]["spec"].get("minReplicas", 1) < 2:
                render.fail(where, "its HorizontalPodAutoscaler keeps at least 2 replicas")
            if "replicas" in spec:
                render.fail(where, "no `replicas` next to a HorizontalPodAutoscaler (an apply would reset it)")
        if command == "auth":
            pod = pod_spec(workload)
            secret_volumes = {
                v["name"]
                for v in pod.get("volumes") or []
                if "secret" in v
                and any(item.get("key") == "signing-keys.json" for item in v["secret"].get("items") or [])
            }
            mounted = {
                m["name"]
                for c in (pod.get("initContainers") or []) + pod["containers"]
                for m in c.get("volumeMounts") or []
            }
            if not secret_volumes & mounted:
                render.fail(where, "auth's signing-keys.json must come from a Secret mounted in the pod")

    for monitor in render.of_kind("PodMonitor", "ServiceMonitor"):
        where = f"{monitor['kind']}/{monitor['metadata']['name']}"
        selected = [
            p for p in processes if matches(monitor["spec"]["selector"], p[0]["spec"]["template"]["metadata"]["labels"])
        ]
        if not selected:
            render.fail(where, "selects no Bestow pod")
        for endpoint in monitor["spec"].get("podMetricsEndpoints") or monitor["spec"].get("endpoints") or []:
            if endpoint.get("path", "/metrics") != "/metrics":
                render.fail(where, "scrapes another path than /metrics")
            for _, container, _, _ in selected:
                if port_number(container, endpoint.get("port")) is None:
                    render.fail(where, f"port {endpoint.get('port')} is no port of {container['name']}")


def self_test(split: list[dict], all_in_one: list[dict], settings: set[str], drain_default_ms: int) -> list[str]:
    """Breaks clean renderings in known ways; each must be caught, by the rule meant for it."""

    def workload(d: list[dict], name: str) -> dict:
        return next(x for x in d if x.get("kind") in WORKLOADS and x["metadata"]["name"].endswith(name))

    def first(d: list[dict], name: str) -> dict:
        return pod_spec(workload(d, name))["containers"][0]

    def env_item(d: list[dict], name: str, var: str) -> dict:
        return next(e for e in first(d, name)["env"] if e["name"] == var)

    def plain(item: dict) -> None:
        item.pop("valueFrom")
        item["value"] = "a-secret-in-plain-sight"

    def configmap(d: list[dict]) -> dict:
        return next(x for x in d if x.get("kind") == "ConfigMap")["data"]

    def of(d: list[dict], kind: str, name: str) -> dict:
        return next(x for x in d if x.get("kind") == kind and x["metadata"]["name"].endswith(name))

    def emptydir_data(d: list[dict]) -> None:
        statefulset = workload(d, "bestow")
        statefulset["spec"].pop("volumeClaimTemplates")
        pod_spec(statefulset)["volumes"].append({"name": "data", "emptyDir": {}})

    # (rendering, what breaks, words of the error that must catch it, the breakage)
    breakages = [
        (
            split,
            "a writable root file system",
            "readOnlyRootFilesystem",
            lambda d: first(d, "gateway")["securityContext"].pop("readOnlyRootFilesystem"),
        ),
        (
            split,
            "a capability kept",
            "drop must contain ALL",
            lambda d: first(d, "events")["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
        ),
        (split, "root", "runAsUser", lambda d: first(d, "auth")["securityContext"].update(runAsUser=0)),
        (
            split,
            "no seccomp profile",
            "RuntimeDefault",
            lambda d: pod_spec(workload(d, "events"))["securityContext"].pop("seccompProfile"),
        ),
        (split, "no memory limit", "limits.memory", lambda d: first(d, "gateway")["resources"]["limits"].pop("memory")),
        (
            split,
            "a secret in plain env",
            "must come from a Secret",
            lambda d: plain(env_item(d, "gateway", "BESTOW_INTERNAL_SECRET")),
        ),
        (
            split,
            "a secret in the ConfigMap",
            "must come from a Secret",
            lambda d: configmap(d).update(BESTOW_WEBHOOK_SECRET="x" * 20),
        ),
        (split, "an unknown setting", "is no setting", lambda d: configmap(d).update(BESTOW_DRAIN_TIMEOUT="10000")),
        (
            split,
            "a short grace period",
            "terminationGracePeriodSeconds",
            lambda d: pod_spec(workload(d, "events")).update(terminationGracePeriodSeconds=12),
        ),
        (
            split,
            "liveness on /readyz",
            "livenessProbe",
            lambda d: first(d, "auth")["livenessProbe"]["httpGet"].update(path="/readyz"),
        ),
        (split, "no readiness probe", "readinessProbe", lambda d: first(d, "gateway").pop("readinessProbe")),
        (
            split,
            "service links",
            "enableServiceLinks",
            lambda d: pod_spec(workload(d, "auth")).update(enableServiceLinks=True),
        ),
        (
            split,
            "metrics on a Service",
            "publishes the metrics port",
            lambda d: of(d, "Service", "gateway")["spec"]["ports"].append(
                {"name": "metrics", "port": 9100, "targetPort": "metrics"}
            ),
        ),
        (
            split,
            "no scrape annotation",
            "prometheus.io/scrape",
            lambda d: workload(d, "events")["spec"]["template"]["metadata"]["annotations"].pop("prometheus.io/scrape"),
        ),
        (
            split,
            "the data dir at a volume's root",
            "subdirectory of a writable volume",
            lambda d: configmap(d).update(BESTOW_DATA_DIR="/var/lib/bestow"),
        ),
        (
            split,
            "events_url to the wrong Service",
            "not events",
            lambda d: configmap(d).update(BESTOW_EVENTS_URL="http://bestow-auth:8081"),
        ),
        (
            split,
            "events_url to a headless Service",
            "headless",
            lambda d: of(d, "Service", "events")["spec"].update(clusterIP="None"),
        ),
        (
            split,
            "no autoscaler",
            "HorizontalPodAutoscaler",
            lambda d: d.remove(next(x for x in d if x.get("kind") == "HorizontalPodAutoscaler")),
        ),
        (
            split,
            "no disruption budget",
            "PodDisruptionBudget",
            lambda d: d.remove(of(d, "PodDisruptionBudget", "events")),
        ),
        (
            split,
            "no signing-key Secret",
            "signing-keys.json",
            lambda d: pod_spec(workload(d, "auth")).update(
                initContainers=[], volumes=[v for v in pod_spec(workload(d, "auth"))["volumes"] if "secret" not in v]
            ),
        ),
        (
            all_in_one,
            "two all-in-one replicas",
            "exactly one replica",
            lambda d: workload(d, "bestow")["spec"].update(replicas=2),
        ),
        (all_in_one, "SQLite on an emptyDir", "persistent volume", emptydir_data),
    ]
    missed = []
    for docs, label, words, breakage in breakages:
        if not docs:
            missed.append(f"self-test: no rendering to break for {label}")
            continue
        broken = copy.deepcopy(docs)
        breakage(broken)
        render = Render(f"self-test ({label})", broken)
        check_render(render, settings, drain_default_ms)
        if not any(words in error for error in render.errors):
            missed.append(f"self-test: {label} was not caught (errors: {render.errors or 'none'})")
    return missed


def main(argv: list[str]) -> int:
    run_self_test = "--self-test" in argv
    args = [a for a in argv if a != "--self-test"]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    settings, drain_default_ms = settings_of(args[0])
    errors: list[str] = []
    split: list[dict] = []
    all_in_one: list[dict] = []
    for item in args[1:]:
        name, _, path = item.partition("=")
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        render = Render(name, docs)
        check_render(render, settings, drain_default_ms)
        workloads = render.of_kind(*WORKLOADS)
        containers = sum(
            len(pod_spec(w)["containers"]) + len(pod_spec(w).get("initContainers") or []) for w in workloads
        )
        if render.errors:
            errors += render.errors
        else:
            kinds = sorted({d["kind"] for d in docs})
            print(
                f"check-kubernetes: {name}: {len(workloads)} workloads, {containers} containers, {', '.join(kinds)}: ok"
            )
        commands = {command_of(c) for w in workloads for c in pod_spec(w)["containers"]}
        if "gateway" in commands and not split:
            split = docs
        if "serve" in commands and not all_in_one:
            all_in_one = docs
    if run_self_test:
        missed = self_test(split, all_in_one, settings, drain_default_ms)
        errors += missed
        if not missed:
            print("check-kubernetes: self-test: each known breakage of both renderings is caught")
    for error in errors:
        print(f"check-kubernetes: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
