"""CV-UGCN: the network, its input features and weak losses, checkpoints, and its torch and ONNX runtimes."""
