"""Model serving: KServe's ``InferenceService`` kind, its controller and the model server.

The model server (``python -m ketch.serving.modelserver``) runs one model in its own
process and speaks KServe's V1 and V2 (Open Inference) REST protocols. Nothing heavy is
imported here.
"""
