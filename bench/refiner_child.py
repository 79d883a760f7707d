"""The refiner node in a child process for the benches that time or watch it from outside (latency, soak)."""

from __future__ import annotations


def _serve(node, ready, stop, freeze: bool, executor_kind: str = "events") -> None:
    """Freeze the start-up heap as the node's console entry point does (`cvpose_ros.ros.entry.run_node`; False
    shows what that buys), say `ready`, spin on `executor_kind` (`cvpose_ros.ros.entry.make_executor`) until `stop`
    is set, then shut down. BENCH_PROFILE=PATH: write a cProfile of the spin to PATH.<pid>."""
    import os

    import rclpy

    from cvpose_ros.ros.entry import freeze_startup_heap, make_executor

    if freeze:
        freeze_startup_heap()
    ready.set()
    executor = make_executor(executor_kind)
    executor.add_node(node)
    profile = None
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    while not stop.is_set():
        executor.spin_once(timeout_sec=0.05)
    if profile is not None:
        profile.disable()
        profile.dump_stats(f"{os.environ['BENCH_PROFILE']}.{os.getpid()}")
    node.destroy_node()
    rclpy.shutdown()


def run_refiner_node(parameters: dict, ready, stop, freeze: bool = True,
                     executor_kind: str = "events") -> None:
    """Child process: run refiner_node with `parameters` until the `stop` event is set; `ready` once built."""
    import rclpy
    from rclpy.parameter import Parameter

    from cvpose_ros.ros.refiner_node import RefinerNode

    rclpy.init()
    _serve(RefinerNode(parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()]), ready, stop,
           freeze, executor_kind)


def run_relay_node(parameters: dict, ready, stop, freeze: bool = True,
                   executor_kind: str = "events") -> None:
    """Child process: the floor of any rclpy node on this path. Subscribes what refiner_node subscribes (both
    cameras' keypoints and camera_info, same QoS) and answers each camera-1 message at once with an empty
    `skeletons` message carrying its stamp: DDS, rclpy's executor and (de)serialisation, nothing of the package."""
    import rclpy
    from cvpose_ros_msgs.msg import Keypoints2D, Skeleton3DArray
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo

    rclpy.init()
    node = Node("refiner_node")
    inputs = QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE,
                        history=HistoryPolicy.KEEP_LAST)
    publisher = node.create_publisher(Skeleton3DArray, "skeletons", 10)

    def answer(msg) -> None:
        out = Skeleton3DArray()
        out.header = msg.header
        publisher.publish(out)

    for cam in (0, 1):
        node.create_subscription(Keypoints2D, f"cam{cam}/keypoints", answer if cam == 1 else (lambda _m: None),
                                 inputs)
        node.create_subscription(CameraInfo, f"cam{cam}/camera_info", lambda _m: None, inputs)
    _serve(node, ready, stop, freeze, executor_kind)


def start_refiner_child(parameters: dict, timeout_s: float, freeze: bool = True, relay: bool = False,
                        executor_kind: str = "events"):
    """Start `run_refiner_node` (or with `relay` the floor, `run_relay_node`) in a spawned child spinning on
    `executor_kind`; returns (process, stop event) once the node is built."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    child = ctx.Process(target=run_relay_node if relay else run_refiner_node,
                        args=(parameters, ready, stop, freeze, executor_kind), daemon=True)
    child.start()
    if not ready.wait(timeout_s):
        raise RuntimeError("refiner_node did not start")
    return child, stop


def wait_for_node(driver, publishers, seconds: float = 30.0) -> None:
    """Spin `driver` until every publisher has a subscriber and the node publishes `skeletons`."""
    import time

    import rclpy

    deadline = time.monotonic() + seconds
    while min(p.get_subscription_count() for p in publishers) == 0 or driver.count_publishers("skeletons") == 0:
        rclpy.spin_once(driver, timeout_sec=0.05)
        if time.monotonic() > deadline:
            raise RuntimeError("no discovery between the bench driver and the refiner node")


def camera_info_messages(rig) -> list:
    """sensor_msgs/CameraInfo of both cameras of a synthetic rig (stamps are set per frame by the caller)."""
    from sensor_msgs.msg import CameraInfo

    from cvpose_ros.devtools.synthetic import camera_info_fields

    messages = []
    for camera in rig.cameras:
        f = camera_info_fields(camera)
        msg = CameraInfo(width=f["width"], height=f["height"], distortion_model=f["distortion_model"], d=f["d"],
                         k=f["k"], r=f["r"], p=f["p"])
        msg.header.frame_id = f["frame_id"]
        messages.append(msg)
    return messages


def finish(driver, child, stop, drain_s: float = 1.0) -> None:
    """Let the last answers arrive for `drain_s`, then stop the node child and shut the driver down."""
    import time

    import rclpy

    end = time.perf_counter() + drain_s
    while time.perf_counter() < end:
        rclpy.spin_once(driver, timeout_sec=0.01)
    stop.set()
    child.join(10)
    driver.destroy_node()
    rclpy.shutdown()
