"""Drive ketch's InferenceService API with KServe's ``KServeClient`` (run in the kserve venv).

Usage: python _kserve_crd.py KUBECONFIG NAMESPACE STORAGE_URI STORAGE_URI_2 ROWS_JSON (the
second URI: the same model elsewhere, for a rollout); prints one JSON
object as its last line (``isvc_watch`` prints its progress table before it).
"""

import contextlib
import io
import json
import sys

import requests
from kserve import (
    KServeClient,
    V1beta1InferenceService,
    V1beta1InferenceServiceSpec,
    V1beta1ModelFormat,
    V1beta1ModelSpec,
    V1beta1PredictorSpec,
    constants,
)
from kubernetes import client, watch

G, V, P = constants.KSERVE_GROUP, constants.KSERVE_V1BETA1_VERSION, "inferenceservices"


def isvc(name: str, namespace: str, uri: str) -> V1beta1InferenceService:
    return V1beta1InferenceService(
        api_version=constants.KSERVE_V1BETA1, kind=constants.KSERVE_KIND_INFERENCESERVICE,
        metadata=client.V1ObjectMeta(name=name, namespace=namespace),
        spec=V1beta1InferenceServiceSpec(predictor=V1beta1PredictorSpec(model=V1beta1ModelSpec(
            model_format=V1beta1ModelFormat(name="sklearn"), storage_uri=uri))))


def error(call) -> str | None:  # type: ignore[no-untyped-def]
    """KServeClient wraps every ApiException in a RuntimeError carrying its text."""
    try:
        call()
    except RuntimeError as err:
        return str(err)
    return None


def watch_until(kc: KServeClient, name: str, ns: str, test) -> dict:  # type: ignore[no-untyped-def]
    """The object's status once ``test`` passes, on a watch of it (its first event is
    the object as it is now)."""
    for event in watch.Watch().stream(
            kc.api_instance.list_namespaced_custom_object, G, V, ns, P,
            field_selector=f"metadata.name={name}", timeout_seconds=120):
        status = event["object"].get("status") or {}
        if test(status):
            return status
    raise SystemExit(f"{name}: the status never passed the test")


def delete_and_wait(kc: KServeClient, name: str, ns: str) -> dict[str, object]:
    """Delete, then wait on a watch resumed from the delete's version for DELETED:
    the finalizer stops the model server first, so the object goes a moment later."""
    deleted = kc.delete(name, namespace=ns)
    types = []
    for event in watch.Watch().stream(
            kc.api_instance.list_namespaced_custom_object, G, V, ns, P,
            field_selector=f"metadata.name={name}",
            resource_version=deleted["metadata"]["resourceVersion"], timeout_seconds=60):
        types.append(event["type"])
        if event["type"] == "DELETED":
            break
    try:
        kc.api_instance.get_namespaced_custom_object(G, V, ns, P, name)
        raw: object = None
    except client.ApiException as err:
        raw = {"status": err.status, "reason": json.loads(err.body)["reason"]}
    return {"deleted_kind": deleted["kind"],
            "deletion_pending": bool(deleted["metadata"].get("deletionTimestamp")),
            "watched": types, "get_after": error(lambda: kc.get(name, namespace=ns)),
            "raw_after": raw}


def main(kubeconfig: str, ns: str, uri: str, uri2: str,
         rows: list[list[float]]) -> dict[str, object]:
    kc = KServeClient(config_file=kubeconfig)
    out: dict[str, object] = {}
    created = kc.create(isvc("iris", ns, uri))
    out["created"] = {"apiVersion": created["apiVersion"], "kind": created["kind"],
                      "generation": created["metadata"]["generation"],
                      "uid": bool(created["metadata"].get("uid"))}
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        # isvc_watch: a watch of the namespace's services until this one's status
        # has observedGeneration and a Ready=True condition (it never raises).
        kc.wait_isvc_ready("iris", namespace=ns, watch=True, timeout_seconds=120)
    out["watch_table"] = table.getvalue().splitlines()
    out["ready_after_watch"] = kc.is_isvc_ready("iris", namespace=ns)
    # The polling path (the default): get and read Ready, then observedGeneration.
    kc.wait_isvc_ready("iris", namespace=ns, polling_interval=1, timeout_seconds=30,
                       expected_generation=1)
    got = kc.get("iris", namespace=ns)
    status = got["status"]
    out["url"] = status.get("url")
    out["observed_generation"] = status.get("observedGeneration")
    out["conditions"] = {c["type"]: c["status"] for c in status.get("conditions", [])}
    out["traffic"] = status.get("components", {}).get("predictor", {}).get("traffic")
    # A tokened ketch guards its data plane with the same token the kubeconfig holds.
    auth = client.Configuration.get_default_copy().api_key.get("authorization")
    out["predictions"] = requests.post(f"{status['url']}/v1/models/iris:predict",
                                       json={"instances": rows}, timeout=30,
                                       headers={"Authorization": auth} if auth else {}).json()
    out["listed"] = [i["metadata"]["name"] for i in kc.get(namespace=ns)["items"]]
    # The predictor's pods as KServe labels them, read into the client's V1Pod models.
    pods = kc.core_api.list_namespaced_pod(
        ns, label_selector="serving.kserve.io/inferenceservice=iris,component=predictor")
    out["pods"] = [[p.metadata.name, p.status.phase, p.spec.containers[0].name,
                    p.status.container_statuses[0].ready] for p in pods.items]
    out["pod_log"] = bool(kc.core_api.read_namespaced_pod_log(
        pods.items[0].metadata.name, ns, container="kserve-container"))
    # A rollout: patch in another storageUri (generation 2, a new revision) and wait for
    # that generation, by the watch and by polling. ketch's Ready means "requests are
    # answered" (the old revision serves meanwhile, as a Deployment stays Available in
    # KServe's raw mode), so these return once generation 2 is observed; the traffic's
    # move to the new revision is then waited for on a watch of the object.
    patched = kc.patch("iris", isvc("iris", ns, uri2), namespace=ns)
    out["patched_generation"] = patched["metadata"]["generation"]
    with contextlib.redirect_stdout(io.StringIO()):
        kc.wait_isvc_ready("iris", namespace=ns, watch=True, timeout_seconds=120,
                           expected_generation=2)
    out["ready_gen2"] = kc.is_isvc_ready("iris", namespace=ns, expected_generation=2)
    kc.wait_isvc_ready("iris", namespace=ns, polling_interval=1, timeout_seconds=30,
                       expected_generation=2)
    rolled = watch_until(kc, "iris", ns, lambda st: any(
        t.get("latestRevision") and t.get("percent") == 100
        for t in st.get("components", {}).get("predictor", {}).get("traffic", [])))
    out["rolled"] = {"uri": rolled["revisions"][-1].get("uri"),
                     "traffic": rolled["components"]["predictor"]["traffic"],
                     "predictor_ready": {c["type"]: c["status"] for c in rolled["conditions"]
                                         }.get("PredictorReady")}

    # A model that cannot load: never Ready, and the polling wait says so.
    kc.create(isvc("broken", ns, uri + "-missing"))
    out["broken_wait"] = error(lambda: kc.wait_isvc_ready(
        "broken", namespace=ns, polling_interval=1, timeout_seconds=3))
    out["broken_ready"] = kc.is_isvc_ready("broken", namespace=ns)
    out["broken"] = delete_and_wait(kc, "broken", ns)
    out["iris"] = delete_and_wait(kc, "iris", ns)
    out["listed_after"] = [i["metadata"]["name"] for i in kc.get(namespace=ns)["items"]]
    return out


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5], json.loads(sys.argv[5]))))
