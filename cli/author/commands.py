"""The command lines of the Promise author's commands (`init`, `add`, `build`, `update`, `test`).

Only argparse here: each command's module (scaffold.py, pipelines.py) and the domain code behind it are imported when
the command runs, so every other `ktx` command starts without them.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any, Callable

# The languages `add container` scaffolds (domain/scaffold.py's LANGUAGES), the engines `build container` runs and
# the workflows `test pipeline` runs.
LANGUAGES = ("bash", "python")
ENGINES = ("podman", "docker")
WORKFLOWS = ("resource.configure", "resource.delete", "promise.configure", "promise.delete")


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace, Any], None]:
    def run(args: argparse.Namespace, ktx: Any) -> None:
        # The author's commands build images and run pipelines locally: they take the full settings.
        getattr(importlib.import_module(module), name)(args, ktx.settings)

    return run


def _dir(p: argparse.ArgumentParser, help: str = "the Promise's directory") -> None:
    p.add_argument("-d", "--dir", default=".", help=help)


def register(sub: Any) -> None:
    init = sub.add_parser("init", help="scaffold a new Promise").add_subparsers(dest="what", required=True)
    promise = init.add_parser("promise", help="a new Promise: promise.yaml, example-resource.yaml and README.md")
    promise.add_argument("name")
    promise.add_argument("-g", "--group", required=True, help="the API group, e.g. example.org")
    promise.add_argument("-k", "--kind", required=True, help="the kind the Promise serves, e.g. Database")
    promise.add_argument("-v", "--version", default="", help="the API version (default v1alpha1)")
    promise.add_argument("--plural", default="", help="the plural of the kind (default: the kind in lower case + s)")
    promise.add_argument("--split", action="store_true", help="api.yaml and dependencies.yaml instead of promise.yaml")
    _dir(promise, "where to write the files (default: here)")
    promise.set_defaults(func=_lazy("cli.author.scaffold", "cmd_init_promise"))

    helm = init.add_parser("helm-promise", help="a new Promise from a local Helm chart: its API from the values")
    helm.add_argument("name")
    helm.add_argument(
        "--chart-url", required=True, help="the chart: a local directory or .tgz, an http(s) .tgz or chart repository"
    )
    helm.add_argument("--chart-name", default="", help="the chart in the repository --chart-url names")
    helm.add_argument("--chart-version", default="", help="its version (default: the repository's latest)")
    helm.add_argument("-g", "--group", required=True)
    helm.add_argument("-k", "--kind", required=True)
    helm.add_argument("-v", "--version", default="")
    helm.add_argument("--plural", default="")
    helm.add_argument("--split", action="store_true")
    helm.add_argument("-i", "--image", help="the pipeline image the chart is built into (default localhost/NAME-...)")
    _dir(helm, "where to write the files (default: here)")
    helm.set_defaults(func=_lazy("cli.author.charts", "cmd_init_helm_promise"))

    xp = init.add_parser("crossplane-promise", help="a new Promise from a Crossplane XRD: its API, a claim per request")
    xp.add_argument("name")
    xp.add_argument("-x", "--xrd", required=True, help="the CompositeResourceDefinition's file")
    xp.add_argument("-c", "--compositions", default="", help="a file of Compositions, made dependencies")
    xp.add_argument("-f", "--functions", default="", help="a file of Functions, made dependencies")
    xp.add_argument(
        "-s", "--skip-dependencies", action="store_true", help="no dependencies: the XRD is already in Crossplane"
    )
    xp.add_argument("-g", "--group", required=True)
    xp.add_argument("-k", "--kind", required=True)
    xp.add_argument("--plural", default="")
    xp.add_argument("--split", action="store_true")
    _dir(xp, "where to write the files (default: here)")
    xp.set_defaults(func=_lazy("cli.author.crossplane", "cmd_init_crossplane_promise"))

    add = sub.add_parser("add", help="add to a Promise").add_subparsers(dest="what", required=True)
    container = add.add_parser("container", help="add a container to a workflow's pipeline and scaffold its image")
    container.add_argument("pipeline", metavar="LIFECYCLE/ACTION/PIPELINE", help="e.g. resource/configure/instance")
    container.add_argument("-i", "--image", required=True, help="the image the container runs, e.g. localhost/x:v1")
    container.add_argument("-n", "--name", default="", help="the container's name (default: from the image)")
    container.add_argument("-l", "--language", choices=LANGUAGES, default="bash")
    _dir(container)
    container.set_defaults(func=_lazy("cli.author.scaffold", "cmd_add_container"))

    build = sub.add_parser("build", help="build a Promise's images or its promise.yaml").add_subparsers(
        dest="what", required=True
    )
    build_container = build.add_parser("container", help="build the image of a container scaffolded by add container")
    build_container.add_argument("pipeline", metavar="LIFECYCLE/ACTION/PIPELINE", nargs="?")
    build_container.add_argument("-n", "--name", default="", help="the container, when the pipeline has several")
    build_container.add_argument("-a", "--all", action="store_true", help="every container of every workflow")
    build_container.add_argument("-e", "--engine", choices=ENGINES, help="default: KTX_CONTAINER_RUNTIME (podman)")
    _dir(build_container)
    build_container.set_defaults(func=_lazy("cli.author.scaffold", "cmd_build_container"))
    build_promise = build.add_parser("promise", help="join a split Promise's files into one Promise")
    build_promise.add_argument("name")
    _dir(build_promise)
    build_promise.add_argument("-o", "--output", help="the file to write (default: standard output)")
    build_promise.set_defaults(func=_lazy("cli.author.scaffold", "cmd_build_promise"))

    update = sub.add_parser("update", help="update a Promise's files").add_subparsers(dest="what", required=True)
    api = update.add_parser("api", help="add (name:type) or remove (name-) API properties, or change the GVK")
    api.add_argument("-p", "--property", action="append", help="name:type (string, number, integer, object, boolean)")
    api.add_argument("-g", "--group", default="")
    api.add_argument("-k", "--kind", default="")
    api.add_argument("-v", "--version", default="")
    api.add_argument("--plural", default="")
    _dir(api)
    api.set_defaults(func=_lazy("cli.author.scaffold", "cmd_update_api"))
    dependencies = update.add_parser("dependencies", help="the YAML documents of a file or directory as dependencies")
    dependencies.add_argument("path")
    dependencies.add_argument("-i", "--image", help="put them in a promise.configure pipeline image instead")
    _dir(dependencies)
    dependencies.set_defaults(func=_lazy("cli.author.scaffold", "cmd_update_dependencies"))
    selector = update.add_parser("destination-selector", help="set (KEY=VALUE) or remove (KEY-) a selector label")
    selector.add_argument("selector", metavar="KEY=VALUE|KEY-")
    _dir(selector)
    selector.set_defaults(func=_lazy("cli.author.scaffold", "cmd_update_destination_selector"))
    _register_test(sub)


def _register_test(sub: Any) -> None:
    test = sub.add_parser("test", help="run a Promise's pipelines here, with no platform").add_subparsers(
        dest="what", required=True
    )
    pipeline = test.add_parser(
        "pipeline", help="run a workflow's containers as the platform would and show what they wrote"
    )
    pipeline.add_argument("promise", metavar="PROMISE_FILE", help="promise.yaml, or the directory of a split Promise")
    pipeline.add_argument("--workflow", choices=WORKFLOWS, default="resource.configure")
    pipeline.add_argument("--pipeline", help="run only this pipeline of the workflow")
    pipeline.add_argument("--input", metavar="REQUEST_FILE", help="the resource request (resource workflows)")
    pipeline.add_argument("--expect", metavar="DIR", help="compare with DIR/<pipeline>/<file>; differences fail")
    pipeline.add_argument("--show-files", action="store_true", help="print each file's contents too")
    pipeline.add_argument("--save", metavar="DIR", help="write the files to DIR/<pipeline>/<file> (for --expect)")
    pipeline.set_defaults(func=_lazy("cli.author.pipelines", "cmd_test_pipeline"))
