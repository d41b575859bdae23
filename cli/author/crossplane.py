"""`ktx init crossplane-promise`: the XRD, Compositions and Functions files read (each bounded as every file the
author commands read), the Promise made by domain/crossplane.py, its files written."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.author.scaffold import read_all_yaml, read_yaml, write
from domain import crossplane
from domain import scaffold as sc


def cmd_init_crossplane_promise(args: argparse.Namespace, settings: Any) -> None:
    xrd = read_yaml(Path(args.xrd))
    dependencies: list[dict[str, Any]] = []
    flags = [f"--xrd {args.xrd}"]
    for option, path in (("--functions", args.functions), ("--compositions", args.compositions)):
        if path:
            flags.append(f"{option} {path}")
            if not args.skip_dependencies:
                dependencies += sc.dependencies_of(read_all_yaml(Path(path)), option, namespaced=False)
    if args.skip_dependencies:
        flags.append("--skip-dependencies")
    else:
        dependencies += sc.dependencies_of([xrd], "--xrd", namespaced=False)
    files, crd = crossplane.promise_files(
        args.name, xrd, args.group, args.kind, args.plural, args.split, dependencies, " ".join(flags)
    )
    for warning in crossplane.warnings(crd):
        print(warning)
    directory = Path(args.dir)
    for name, text in files.items():
        write(directory / name, text)
    print("Crossplane Promise generated successfully.")
