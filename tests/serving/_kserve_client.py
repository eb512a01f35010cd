"""Drive a ketch model server with KServe's own REST client (run in the kserve venv).

Usage: python _kserve_client.py BASE_URL MODEL ROWS_JSON; prints one JSON object.
"""

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def main(base_url: str, model: str, rows: list[list[float]]) -> dict[str, object]:
    out: dict[str, object] = {}
    v1 = InferenceRESTClient(RESTConfig(protocol="v1", retries=0))
    out["v1_live"] = await v1.is_server_live(base_url)
    out["v1_model_ready"] = await v1.is_model_ready(base_url, model)
    res = await v1.infer(base_url, {"instances": rows}, model_name=model)
    out["v1_predictions"] = res["predictions"]
    await v1.close()

    v2 = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
    out["v2_live"] = await v2.is_server_live(base_url)
    out["v2_ready"] = await v2.is_server_ready(base_url)
    out["v2_model_ready"] = await v2.is_model_ready(base_url, model)
    arr = np.asarray(rows, dtype=np.float64)
    for binary in (False, True):
        inp = InferInput(name="input-0", shape=list(arr.shape), datatype="FP64")
        inp.set_data_from_numpy(arr, binary_data=binary)
        req = InferRequest(model_name=model, infer_inputs=[inp], request_id=f"r-{binary}")
        resp = await v2.infer(base_url, req, model_name=model)
        out[f"v2_binary_{binary}"] = {"id": resp.id,
                                      "name": resp.outputs[0].name,
                                      "datatype": resp.outputs[0].datatype,
                                      "data": resp.outputs[0].as_numpy().tolist()}
    await v2.close()
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))))
