"""archfuse-export: any archfuse checkpoint as a file that runs without archfuse (a torch.export program,
an AOTInductor package for int8, or ONNX), with the data's normalisation inside and its spec beside it."""
