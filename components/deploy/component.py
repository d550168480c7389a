"""The kfp wrapper of :func:`components.deploy.core.deploy`."""

# No "from __future__ import annotations": kfp reads the parameter annotations as types.

from kfp import dsl
from kfp.dsl import Artifact, Output

from components._image import BASE_IMAGE

__all__ = ["deploy_op"]


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def deploy_op(
    manifests: Output[Artifact],
    target: str = "render",
    namespace: str = "hydatis-system",
    storage_root: str = "pvc://hydatis-models",
) -> str:
    """Render the champions' InferenceServices (the ``manifests`` artifact) and deploy
    them to ``target`` (``render``, ``local`` or ``cluster``); return what was done as
    JSON."""
    import json
    import shutil
    import tempfile

    from components.deploy import deploy

    with tempfile.TemporaryDirectory(prefix="hydatis-deploy-") as tmp:
        result = deploy(target, out_dir=tmp, namespace=namespace, storage_root=storage_root)
        shutil.copyfile(result["manifests"], manifests.path)
    result["manifests"] = manifests.path
    manifests.metadata["deployed"] = result["deployed"]
    return json.dumps(result, default=str)
