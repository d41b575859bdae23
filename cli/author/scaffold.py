"""`ktx init promise`, `add container`, `build container|promise`, `update api|dependencies|destination-selector`:
the Kratix CLI's commands for writing a Promise, reading and writing the files domain/scaffold.py generates.

A Promise directory is flat (promise.yaml) or split (`init promise --split`: api.yaml, dependencies.yaml and
workflows/<lifecycle>/<action>/workflow.yaml, joined by `build promise`), as in Kratix.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from cli.author import AuthorError
from cli.author.commands import ENGINES
from domain import scaffold as sc

# The files these commands read are the author's own, but each is bounded all the same: a Promise the platform takes
# is at most 1 MiB as a document (the API's limit), so 8 MiB of YAML is far past any real one.
MAX_FILE_BYTES = 8 * 1024 * 1024
# `update dependencies` reads every YAML file of a directory, recursively: at most this many.
MAX_DEPENDENCY_FILES = 1000


def read_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise AuthorError(f"error: {path} is {size} bytes, over the limit of {MAX_FILE_BYTES}")
    return path.read_text(encoding="utf-8")


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(read_text(path))


def read_all_yaml(path: Path) -> list[Any]:
    return list(yaml.safe_load_all(read_text(path)))


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def is_split(directory: Path) -> bool:
    return not (directory / sc.PROMISE_FILE).exists()


def _promise(directory: Path) -> dict[str, Any]:
    path = directory / sc.PROMISE_FILE
    if not path.exists():
        raise AuthorError(f"error: no {sc.PROMISE_FILE} in {directory}; run 'ktx init promise' first")
    promise = read_yaml(path)
    if not isinstance(promise, dict):
        raise AuthorError(f"error: {path} does not hold a Promise")
    return promise


def _workflow_file(directory: Path, path: sc.PipelinePath) -> Path:
    return directory / path.directory / sc.WORKFLOW_FILE


def _pipelines(directory: Path, path: sc.PipelinePath) -> list[dict[str, Any]]:
    if not is_split(directory):
        return sc.workflow_pipelines(_promise(directory), path)
    file = _workflow_file(directory, path)
    pipelines = read_yaml(file) if file.exists() else None
    return list(pipelines or [])


def _save_pipelines(directory: Path, path: sc.PipelinePath, pipelines: list[dict[str, Any]]) -> Path:
    if is_split(directory):
        file = _workflow_file(directory, path)
        write(file, sc.dump(pipelines))
        return file
    file = directory / sc.PROMISE_FILE
    write(file, sc.dump(sc.set_workflow(_promise(directory), path, pipelines)))
    return file


def workflows(directory: Path) -> dict[str, dict[str, list[Any]]]:
    """The split files' workflows: each workflows/<lifecycle>/<action>/workflow.yaml there is."""
    found: dict[str, dict[str, list[Any]]] = {}
    for lifecycle in sc.LIFECYCLES:
        for action in sc.ACTIONS:
            file = directory / "workflows" / lifecycle / action / sc.WORKFLOW_FILE
            if file.exists():
                found.setdefault(lifecycle, {})[action] = list(read_yaml(file) or [])
    return found


def load_promise(directory: Path, name: str = "") -> dict[str, Any]:
    """The Promise a directory holds: promise.yaml, or the split files joined as `build promise` joins them."""
    if not is_split(directory):
        return _promise(directory)
    parts = {
        file: read_yaml(directory / file) for file in (sc.API_FILE, sc.DEPENDENCIES_FILE) if (directory / file).exists()
    }
    return sc.assemble(name or directory.resolve().name, parts, workflows(directory))


def _where(directory: str) -> str:
    return "current" if directory == "." else directory


def cmd_init_promise(args: argparse.Namespace, settings: Any) -> None:
    files = sc.promise_files(args.name, args.group, args.kind, args.version, args.plural, args.split)
    directory = Path(args.dir)
    for name, text in files.items():
        write(directory / name, text)
    print(f"{args.name} promise bootstrapped in the {_where(args.dir)} directory")


def _container_dir(directory: Path, path: sc.PipelinePath, container: str) -> Path:
    return directory / path.directory / path.pipeline / container


def add_container(
    directory: Path, path: sc.PipelinePath, name: str, image: str, language: str, overwrite: bool = False
) -> Path:
    """The container in the Promise's workflow, and its directory (Dockerfile, scripts/, resources/) scaffolded."""
    pipelines = sc.with_container(_pipelines(directory, path), path, name, image, overwrite)
    promise = load_promise(directory)
    sc.check_admitted(sc.set_workflow(promise, path, pipelines))
    file = _save_pipelines(directory, path, pipelines)
    target = _container_dir(directory, path, name)
    for relpath, text in sc.container_files(language).items():
        write(target / relpath, text, 0o755 if relpath.startswith("scripts/") else 0o644)
    (target / "resources").mkdir(exist_ok=True)
    return file


def cmd_add_container(args: argparse.Namespace, settings: Any) -> None:
    path = sc.parse_pipeline_path(args.pipeline)
    name = args.name or sc.default_container_name(args.image)
    directory = Path(args.dir)
    file = add_container(directory, path, name, args.image, args.language)
    script = sc.LANGUAGES[args.language][0]
    print(f"generated the {path}/{name} in {file}")
    print(f"Customise your container by editing {path.directory}/{path.pipeline}/{name}/scripts/{script}")
    print(f"Then build its image with: ktx build container {path} --name {name}")


def _build_targets(directory: Path, args: argparse.Namespace) -> list[str]:
    if not args.all:
        if not args.pipeline:
            raise AuthorError("error: give LIFECYCLE/ACTION/PIPELINE or --all")
        return [args.pipeline]
    targets = []
    for lifecycle in sc.LIFECYCLES:
        for action in sc.ACTIONS:
            base = directory / "workflows" / lifecycle / action
            if base.is_dir():
                targets += [f"{lifecycle}/{action}/{d.name}" for d in sorted(base.iterdir()) if d.is_dir()]
    return targets


def cmd_build_container(args: argparse.Namespace, settings: Any) -> None:
    directory = Path(args.dir)
    engine = args.engine or settings.container_runtime
    if engine not in ENGINES or shutil.which(engine) is None:
        raise AuthorError(f"error: unsupported or missing container engine {engine!r}: one of {', '.join(ENGINES)}")
    promise = load_promise(directory)
    for target in _build_targets(directory, args):
        path = sc.parse_pipeline_path(target)
        pipeline = sc.find_pipeline(sc.workflow_pipelines(promise, path), path)
        pipeline_dir = directory / path.directory / path.pipeline
        names = sorted(d.name for d in pipeline_dir.iterdir() if d.is_dir()) if pipeline_dir.is_dir() else []
        container = sc.find_container(pipeline, names, args.name if not args.all else None)
        image = container["image"]
        print(f"Building container with tag {image}...", flush=True)
        # Both values passed the grammar (an image reference and a DNS label), and `--` ends the options.
        built = subprocess.run([engine, "build", f"--tag={image}", "--", str(pipeline_dir / container["name"])])
        if built.returncode != 0:
            raise AuthorError(f"error: {engine} build of {image} failed (exit code {built.returncode})")


def cmd_build_promise(args: argparse.Namespace, settings: Any) -> None:
    sc.check_promise_name(args.name)
    promise = load_promise(Path(args.dir), args.name)
    promise["metadata"]["name"] = args.name
    text = sc.dump(promise)
    if args.output:
        write(Path(args.output), text)
    else:
        print(text, end="")


def cmd_update_api(args: argparse.Namespace, settings: Any) -> None:
    directory = Path(args.dir)
    split = is_split(directory)
    if split:
        crd = read_yaml(directory / sc.API_FILE)
    else:
        promise = _promise(directory)
        crd = (promise.get("spec") or {}).get("api")
    if not isinstance(crd, dict):
        raise AuthorError(f"error: no API in {directory}; run 'ktx init promise' first")
    updated = sc.update_crd(crd, args.property or [], args.group, args.kind, args.version, args.plural)
    example_file = directory / sc.EXAMPLE_FILE
    if args.group or args.kind or args.version or args.plural:
        example = sc.example_for(read_yaml(example_file), updated)
    if split:
        sc.check_admitted(sc.assemble(directory.resolve().name, {sc.API_FILE: updated}, {}))
        write(directory / sc.API_FILE, sc.dump(updated))
    else:
        promise.setdefault("spec", {})["api"] = updated
        sc.check_admitted(promise)
        write(directory / sc.PROMISE_FILE, sc.dump(promise))
    print("Promise api updated")
    if args.group or args.kind or args.version or args.plural:
        write(example_file, sc.dump(example))
        print("Example resource updated")


def _dependency_documents(source: Path) -> list[dict[str, Any]]:
    if source.is_file():
        files = [source]
    elif source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    else:
        raise AuthorError(f"error: {source} is neither a file nor a directory")
    if len(files) > MAX_DEPENDENCY_FILES:
        raise AuthorError(f"error: {source} holds {len(files)} YAML files, over the limit of {MAX_DEPENDENCY_FILES}")
    documents = [d for f in files for d in sc.dependencies_of(read_all_yaml(f), str(f))]
    if not documents:
        raise AuthorError(f"error: no dependencies found in {source}")
    return documents


def _copy_resources(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True, symlinks=False)
    else:
        shutil.copy2(source, target / source.name)


def cmd_update_dependencies(args: argparse.Namespace, settings: Any) -> None:
    directory, source = Path(args.dir), Path(args.path)
    if args.image:
        # Kratix's: the files go in an image of a promise.configure pipeline that copies them to its output.
        _dependency_documents(source)  # the same check: only Kubernetes objects become the Promise's dependencies
        path = sc.PipelinePath("promise", "configure", sc.DEPENDENCIES_PIPELINE)
        add_container(directory, path, sc.DEPENDENCIES_CONTAINER, args.image, "bash", overwrite=True)
        target = _container_dir(directory, path, sc.DEPENDENCIES_CONTAINER)
        _copy_resources(source, target / "resources")
        write(target / "scripts" / "pipeline.sh", sc.DEPENDENCIES_SCRIPT, 0o755)
        if is_split(directory):
            (directory / sc.DEPENDENCIES_FILE).unlink(missing_ok=True)
        else:
            promise = _promise(directory)
            promise.setdefault("spec", {})["dependencies"] = []
            write(directory / sc.PROMISE_FILE, sc.dump(promise))
        print("Dependencies added as a Promise workflow.")
        print(f"Build its image with: ktx build container {path} --name {sc.DEPENDENCIES_CONTAINER}")
        return
    documents = _dependency_documents(source)
    if is_split(directory):
        write(directory / sc.DEPENDENCIES_FILE, sc.dump(documents))
        print(f"Updated {sc.DEPENDENCIES_FILE}")
        return
    promise = _promise(directory)
    promise.setdefault("spec", {})["dependencies"] = documents
    write(directory / sc.PROMISE_FILE, sc.dump(promise))
    print(f"Updated {sc.PROMISE_FILE}")


def cmd_update_destination_selector(args: argparse.Namespace, settings: Any) -> None:
    directory = Path(args.dir)
    promise = sc.update_destination_selector(_promise(directory), args.selector)
    sc.check_admitted(promise)
    write(directory / sc.PROMISE_FILE, sc.dump(promise))
    print("Promise destination selector updated")
