"""A protobuf >= 5 compatibility shim that the MediaPipe Tasks API needs, installed before mediapipe is imported.

mediapipe 0.10.21's C++ <-> Python proto bridge (pybind11_protobuf) looks up `MessageFactory.GetPrototype`, which
protobuf 5 removed in favour of `message_factory.GetMessageClass` (same meaning). Without it the bridge gives up on
its first use, for the rest of the process, and the Tasks API `PoseLandmarker` cannot be built. Importing mediapipe
already uses the bridge, so the shim must be in place first: `cvpose_ros.detection` installs it on import.
"""

from __future__ import annotations


def install_protobuf_compat() -> bool:
    """Give protobuf's MessageFactory its old `GetPrototype` name when it lacks it; True if protobuf is present."""
    try:
        from google.protobuf import message_factory
    except ImportError:
        return False
    if not hasattr(message_factory.MessageFactory, "GetPrototype"):
        message_factory.MessageFactory.GetPrototype = (
            lambda self, descriptor: message_factory.GetMessageClass(descriptor))
    return True
