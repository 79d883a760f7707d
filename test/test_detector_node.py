"""detector_node over real DDS (in-process rclpy, private context): a real photograph through MediaPipe, a
multi-person ONNX model on compressed images, bad frames, parameters."""

from __future__ import annotations

import importlib.util
import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("cvpose_ros_msgs.msg")
from cvpose_ros_msgs.msg import Keypoints2D  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from cvpose_ros.body.skeleton import COCO17  # noqa: E402
from cvpose_ros.detection.tracking import first_id_for  # noqa: E402
from cvpose_ros.ros.detector_node import DetectorNode, main  # noqa: E402

J = {name: i for i, name in enumerate(COCO17.joint_names)}
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class Harness:
    """A tester node (publishes images, collects keypoints and diagnostics) next to detector nodes."""

    def __init__(self, context) -> None:
        self.context = context
        self.node = rclpy.create_node("detector_tester", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.keypoints: list[Keypoints2D] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, RELIABLE)

    def start_detector(self, namespace: str, **params) -> DetectorNode:
        overrides = [Parameter(name, value=value) for name, value in params.items()]
        detector = DetectorNode(context=self.context, namespace=namespace, parameter_overrides=overrides)
        self.executor.add_node(detector)
        self.node.create_subscription(Keypoints2D, f"/{namespace}/keypoints", self.keypoints.append, RELIABLE)
        return detector

    def spin_until(self, condition, timeout_s: float, message: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, message
            self.executor.spin_once(timeout_sec=0.02)

    def publish_until_answered(self, publisher, msg, timeout_s: float = 20.0) -> Keypoints2D:
        """Publish best-effort `msg` every 0.25 s until a keypoints message with its stamp arrives."""
        start_count = len(self.keypoints)
        deadline = time.monotonic() + timeout_s
        while True:
            publisher.publish(msg)
            resend = time.monotonic() + 0.25
            while time.monotonic() < resend:
                self.executor.spin_once(timeout_sec=0.02)
                for answer in self.keypoints[start_count:]:
                    if answer.header.stamp == msg.header.stamp:
                        return answer
            assert time.monotonic() < deadline, "no keypoints came back from the detector"

    def latest_status(self, node_name: str):
        for array in reversed(self.diagnostics):
            for status in array.status:
                if node_name in status.name:
                    return status, {kv.key: kv.value for kv in status.values}
        return None, {}


@pytest.fixture()
def harness():
    context = rclpy.Context()
    rclpy.init(context=context)
    h = Harness(context)
    yield h
    for node in list(h.executor.get_nodes()):
        h.executor.remove_node(node)
        node.destroy_node()
    h.executor.shutdown()
    rclpy.shutdown(context=context)


def image_msg(rgb: np.ndarray, encoding: str, sec: int, frame_id: str, row_padding: int = 0) -> Image:
    pixels = rgb[..., ::-1] if encoding == "bgr8" else rgb
    rows = np.ascontiguousarray(pixels).reshape(rgb.shape[0], -1)
    rows = np.concatenate([rows, np.zeros((rows.shape[0], row_padding), np.uint8)], axis=1)
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, step=rows.shape[1])
    msg.data = rows.tobytes()
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, 123456789
    msg.header.frame_id = frame_id
    return msg


def test_mediapipe_node_on_a_real_photograph(harness):
    if importlib.util.find_spec("mediapipe") is None:  # not importorskip: the package imports it (protobuf shim)
        pytest.skip("the optional extra 'mediapipe' is not installed")
    skimage_data = pytest.importorskip("skimage.data")
    photo = skimage_data.astronaut()
    harness.start_detector("cam0", backend="mediapipe", diagnostics_period=0.2)
    publisher = harness.node.create_publisher(Image, "/cam0/image", qos_profile_sensor_data)

    answer = harness.publish_until_answered(publisher, image_msg(photo, "rgb8", 1700, "cam0_optical_frame", 16))
    assert answer.header.frame_id == "cam0_optical_frame" and answer.header.stamp.sec == 1700
    assert answer.header.stamp.nanosec == 123456789 and answer.layout == "coco17"
    assert len(answer.people) == 1
    person = answer.people[0]
    assert person.track_id == first_id_for("/cam0") and len(person.x) == len(person.y) == len(person.confidence) == 17
    xy = np.stack([person.x, person.y], axis=1)
    conf = np.asarray(person.confidence)
    upper = [J[n] for n in ("nose", "l_eye", "r_eye", "l_shoulder", "r_shoulder")]
    assert np.all(conf[upper] > 0.7)
    assert xy[[J["nose"], J["l_eye"], J["r_eye"]], 1].max() < xy[[J["l_shoulder"], J["r_shoulder"]], 1].min()
    assert np.all((xy[upper] >= 0) & (xy[upper] < 512))
    assert xy[J["l_shoulder"], 0] > xy[J["r_shoulder"], 0]  # facing the camera

    # the same photo as bgr8 gives the same person (colour conversion inside the node)
    bgr = harness.publish_until_answered(publisher, image_msg(photo, "bgr8", 1701, "cam0_optical_frame"))
    xy_bgr = np.stack([bgr.people[0].x, bgr.people[0].y], axis=1)
    assert np.abs(xy_bgr[upper] - xy[upper]).max() < 8.0
    harness.spin_until(lambda: harness.latest_status("cam0")[1].get("frames_published", "0") != "0", 5.0,
                       "no diagnostics from the detector")
    status, values = harness.latest_status("cam0")
    assert values["backend"] == "mediapipe" and float(values["processing_ms_mean"]) > 0


def yolo_model(tmp_path):
    pytest.importorskip("onnxruntime")
    from cvpose_ros.detection.synthetic_models import yolo_pose_constant_model

    rows = np.zeros((56, 8), np.float32)
    for anchor, (cx, top) in enumerate(((150.0, 120.0), (420.0, 140.0))):
        x = cx + np.linspace(-40, 40, 17)
        y = top + np.linspace(0, 300, 17)
        rows[0:5, anchor] = (cx, top + 150, 100, 320, 0.9 - 0.1 * anchor)
        rows[5:, anchor] = np.stack([x, y, np.full(17, 0.95)], axis=1).ravel()
    return yolo_pose_constant_model(tmp_path / "yolo.onnx", rows), rows


def test_onnx_node_compressed_multi_person_and_bad_frames(harness, tmp_path):
    model, rows = yolo_model(tmp_path)
    harness.start_detector("cam1", backend="onnx", model_path=str(model), use_compressed=True,
                           output_layout="h36m17", frame_id="cam1_optical", diagnostics_period=0.2)
    publisher = harness.node.create_publisher(CompressedImage, "/cam1/image/compressed", qos_profile_sensor_data)
    ok, jpeg = cv2.imencode(".jpg", np.zeros((480, 640, 3), np.uint8))  # letterbox: 80 px padding at the top
    good = CompressedImage(format="jpeg", data=jpeg.tobytes())
    good.header.stamp.sec, good.header.frame_id = 50, "ignored_frame"

    answer = harness.publish_until_answered(publisher, good)
    assert answer.header.frame_id == "cam1_optical" and answer.layout == "h36m17" and len(answer.people) == 2
    expected_x = rows[5::3, 0]
    expected_y = rows[6::3, 0] - 80.0
    pelvis = [(expected_x[11] + expected_x[12]) / 2, (expected_y[11] + expected_y[12]) / 2]
    first = answer.people[0]  # best score first
    assert first.x[0] == pytest.approx(pelvis[0], abs=1e-3) and first.y[0] == pytest.approx(pelvis[1], abs=1e-3)
    assert first.x[3] == pytest.approx(expected_x[16], abs=1e-3)  # h36m r_ankle = coco r_ankle

    # a frame that cannot be decoded is skipped, counted and reported; the node keeps answering
    broken = CompressedImage(format="jpeg", data=b"\xff\xd8\xff garbage")
    broken.header.stamp.sec = 51

    def conversion_error_reported() -> bool:
        publisher.publish(broken)
        return int(harness.latest_status("cam1")[1].get("conversion_errors", "0")) > 0

    harness.spin_until(conversion_error_reported, 10.0, "bad frame not reported on /diagnostics")
    status, values = harness.latest_status("cam1")
    assert status.level == status.WARN and "cannot decode" in values["last_error"]
    good.header.stamp.sec = 52
    again = harness.publish_until_answered(publisher, good)
    assert len(again.people) == 2
    # per-camera track ids: distinct, in this camera's block, the same people keep theirs
    ids = [p.track_id for p in answer.people]
    assert len(set(ids)) == 2 and all(first_id_for("/cam1") <= i < first_id_for("/cam1") + 100 for i in ids)
    assert [p.track_id for p in again.people] == ids

    def tracks_reported() -> bool:
        return harness.latest_status("cam1")[1].get("tracks_alive") == "2"

    harness.spin_until(tracks_reported, 10.0, "track count not on /diagnostics")
    assert harness.latest_status("cam1")[1]["track_ids_issued"] == "2"  # the same two people, no new ids


def test_compressed_1080p_decoded_at_half_size_gives_full_resolution_keypoints(harness, tmp_path):
    """decode_scale 0 (auto) with a whole-image top-down model of 960x540 input: the network sees a 1920x1080
    image at 960x540 anyway, so JPEGs are decoded at 1/2 and the keypoints still come out in 1920x1080 pixels,
    where a full decode puts them."""
    pytest.importorskip("onnxruntime")
    from cvpose_ros.detection.synthetic_models import simcc_probe_model

    model = str(simcc_probe_model(tmp_path / "probe.onnx", (960, 540)))  # every joint on the reddest pixel
    common = {"backend": "onnx", "model_path": model, "use_compressed": True, "track": False,
              "diagnostics_period": 0.2}
    auto = harness.start_detector("cam5", **common)
    harness.start_detector("cam6", decode_scale=1, **common)
    # the spot sits on the network's 2.5 px input grid (input = 0.4 * pixel + (96, 54)), so the probe's argmax
    # is exact for the full decode and what is left is the decode path (centre (760, 490) = input (400, 250))
    yy, xx = np.mgrid[0:1080, 0:1920].astype(np.float64)
    bgr = np.full((1080, 1920, 3), 30, np.uint8)
    bgr[..., 2] = 30 + 200 * np.exp(-((xx - 760.0) ** 2 + (yy - 490.0) ** 2) / (2 * 8.0**2))
    jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    answers = {}
    for namespace in ("cam5", "cam6"):
        publisher = harness.node.create_publisher(CompressedImage, f"/{namespace}/image/compressed",
                                                  qos_profile_sensor_data)
        for sec in (70, 71):  # the first image is decoded in full: that is how the node learns the size
            msg = CompressedImage(format="jpeg", data=jpeg)
            msg.header.stamp.sec = sec
            answers[namespace] = harness.publish_until_answered(publisher, msg)
    assert auto.decoder.factor == 2 and auto.decoder.reduced_count >= 1
    full, reduced = (np.array([answers[ns].people[0].x, answers[ns].people[0].y]).T for ns in ("cam6", "cam5"))
    np.testing.assert_allclose(full, np.tile([760.0, 490.0], (17, 1)), atol=0.5)
    assert np.abs(reduced - full).max() <= 1.0
    harness.spin_until(lambda: harness.latest_status("cam5")[1].get("decode_factor") == "2", 10.0,
                       "decode factor not on /diagnostics")
    assert int(harness.latest_status("cam5")[1]["images_decoded_reduced"]) >= 1


def test_tracking_can_be_switched_off_or_started_at_a_given_id(harness, tmp_path):
    model, _ = yolo_model(tmp_path)
    harness.start_detector("cam3", backend="onnx", model_path=str(model), track=False)
    harness.start_detector("cam4", backend="onnx", model_path=str(model), track_id_start=500)
    image = np.zeros((480, 640, 3), np.uint8)
    for namespace, expected in (("cam3", {-1}), ("cam4", {500, 501})):
        publisher = harness.node.create_publisher(Image, f"/{namespace}/image", qos_profile_sensor_data)
        answer = harness.publish_until_answered(publisher, image_msg(image, "rgb8", 60, namespace))
        assert {p.track_id for p in answer.people} == expected


def test_mediapipe_node_tracks_two_people_across_frames(harness):
    if importlib.util.find_spec("mediapipe") is None:
        pytest.skip("the optional extra 'mediapipe' is not installed")
    skimage_data = pytest.importorskip("skimage.data")
    photo = skimage_data.astronaut()
    # whole image, one pass: in this photo a second search (rescan) or a window can take the helmet for a head
    harness.start_detector("cam5", backend="mediapipe", max_people=3, mediapipe_window_aspect=0.0,
                           mediapipe_rescan=False)
    publisher = harness.node.create_publisher(Image, "/cam5/image", qos_profile_sensor_data)
    tracks: dict[int, list[float]] = {}
    for step in range(4):  # two people on a fixed canvas, a gap between them, both moving right 8 px a frame
        image = np.full((512, 1312, 3), 127, np.uint8)
        image[:, 8 * step:512 + 8 * step] = photo
        image[:, 768 + 8 * step:1280 + 8 * step] = photo[:, ::-1]
        answer = harness.publish_until_answered(publisher, image_msg(image, "rgb8", 70 + step, "cam5"))
        assert len(answer.people) == 2
        for person in answer.people:
            tracks.setdefault(person.track_id, []).append(float(np.nanmedian(person.x)))
    assert len(tracks) == 2 and all(len(xs) == 4 for xs in tracks.values())  # no id switch, no new id
    left, right = sorted(tracks.values(), key=lambda xs: xs[0])
    assert max(left) < 640 < min(right)  # each id stayed on its own person


def test_parameters_are_validated(harness, tmp_path):
    with pytest.raises(ValueError, match="needs model_path"):
        harness.start_detector("bad0", backend="onnx")
    with pytest.raises(ValueError, match="output_layout"):
        harness.start_detector("bad1", backend="onnx", model_path="x.onnx", output_layout="body25")
    model, _ = yolo_model(tmp_path)
    detector = harness.start_detector("cam2", backend="onnx", model_path=str(model))
    results = detector.set_parameters([Parameter("min_confidence", value=2.0)])
    assert not results[0].successful and "min_confidence" in results[0].reason
    assert detector.set_parameters([Parameter("max_people", value=1)])[0].successful
    assert detector.config.max_people == 1
    assert not detector.set_parameters([Parameter("backend", value="mediapipe")])[0].successful
    assert detector.set_parameters([Parameter("use_sim_time", value=True)])[0].successful  # rclpy's own
    # the same parameter kit as the refiner: ranges and read-only flags in what `ros2 param describe` shows
    confidence, backend = detector.describe_parameters(["min_confidence", "backend"])
    assert (confidence.floating_point_range[0].from_value, confidence.floating_point_range[0].to_value) == (0.0, 1.0)
    assert not confidence.read_only and backend.read_only and "restart" in backend.description
    assert not detector.set_parameters([Parameter("max_people", value=-2)])[0].successful
    assert main(["detector_node", "--ros-args", "-p", "backend:=openpose"]) == 1
    assert main(["detector_node", "--ros-args", "-p", "decode_scale:=3"]) == 1


def test_incompatible_image_qos_is_reported_naming_both_sides(harness, tmp_path):
    """A reliable image subscription cannot hear a sensor-data (best-effort) driver: say so on /diagnostics and in
    the log, with both QoS; the default (best effort) hears both reliable and best-effort publishers."""
    model, _ = yolo_model(tmp_path)
    harness.start_detector("camq", backend="onnx", model_path=str(model), image_reliability="reliable",
                           diagnostics_period=0.2)
    driver = rclpy.create_node("sensor_driver", namespace="camq", context=harness.context)
    harness.executor.add_node(driver)
    driver.create_publisher(Image, "/camq/image", qos_profile_sensor_data)

    def reported() -> bool:
        status, values = harness.latest_status("/camq/detector")
        return status is not None and "incompatible" in status.message

    harness.spin_until(reported, 20.0, "incompatible QoS not reported on /diagnostics")
    status, values = harness.latest_status("/camq/detector")
    assert status.level == status.WARN and int(values["incompatible_qos_events"]) >= 1
    assert "RELIABILITY" in status.message and "reliable/volatile" in status.message
    assert "/camq/sensor_driver (best_effort/volatile)" in status.message
    assert values["image_qos"] == "reliable, depth 1"

    # default QoS: a reliable driver and a best-effort driver both reach the detector
    harness.start_detector("camd", backend="onnx", model_path=str(model), diagnostics_period=0.2)
    ok, jpeg = cv2.imencode(".jpg", np.zeros((480, 640, 3), np.uint8))
    rgb = np.zeros((48, 64, 3), np.uint8)
    for sec, qos in ((60, RELIABLE), (61, qos_profile_sensor_data)):
        publisher = driver.create_publisher(Image, "/camd/image", qos)
        answer = harness.publish_until_answered(publisher, image_msg(rgb, "rgb8", sec, "camd_optical"))
        assert answer.header.stamp.sec == sec
        driver.destroy_publisher(publisher)
    with pytest.raises(ValueError, match="image_reliability"):
        harness.start_detector("bad2", backend="onnx", model_path=str(model), image_reliability="keep_all")


def test_images_dropped_while_busy_are_counted_apart_from_transport_loss(harness, tmp_path):
    """A burst faster than the detector: every delivered image is counted on arrival; the ones replaced before the
    worker took them are busy drops, and received = published + busy drops (nothing unaccounted)."""
    model, _ = yolo_model(tmp_path)
    harness.start_detector("camb", backend="onnx", model_path=str(model), queue_depth=50, diagnostics_period=0.2,
                           image_reliability="reliable")
    publisher = harness.node.create_publisher(Image, "/camb/image", QoSProfile(depth=50,
                                                                             reliability=ReliabilityPolicy.RELIABLE))
    harness.spin_until(lambda: publisher.get_subscription_count() > 0, 10.0, "no discovery")
    rgb = np.zeros((720, 1280, 3), np.uint8)
    burst = 40
    for i in range(burst):
        publisher.publish(image_msg(rgb, "rgb8", 100 + i, "camb_optical"))

    def settled() -> bool:
        status, values = harness.latest_status("/camb/detector")
        return (status is not None and values["frames_received"] == str(burst)
                and int(values["frames_published"]) + int(values["busy_dropped_total"]) == burst)

    harness.spin_until(settled, 30.0, f"accounting did not settle: {harness.latest_status('/camb/detector')[1]}")
    status, values = harness.latest_status("/camb/detector")
    assert int(values["busy_dropped_total"]) >= 1 and int(values["frames_published"]) >= 1
    # the newest image is always detected
    harness.spin_until(lambda: any(k.header.stamp.sec == 100 + burst - 1 for k in harness.keypoints), 10.0,
                       "the newest image was not detected")
