"""2D keypoint detectors, one per camera namespace (default two: cam0 and cam1; `cameras:="[a, b, c]"` for more).

Each runs `detector_node` as `<ns>/detector` with config/detector.yaml, reads `<ns>/<image_topic>` (or its
`/compressed` variant) and publishes `<ns>/keypoints`, the topics the refiner node reads.
Example: ros2 launch cvpose_ros detectors.launch.py image_topic:=image_rect_color backend:=onnx model_path:=/m.onnx
Every process gets the package's Fast DDS profile (config/fastdds_images.xml) unless FASTDDS_DEFAULT_PROFILES_FILE
or `dds_profile` is set; the camera driver publishing the images needs the same profile (docs/image_transport.md).
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from cvpose_ros.ros.camera_list import camera_namespaces
from cvpose_ros.ros.dds_profile import launch_actions
from launch import LaunchDescription

PACKAGE = "cvpose_ros"
ARGUMENTS = {
    "cam0_ns": ("cam0", "namespace of the first camera"),
    "cam1_ns": ("cam1", "namespace of the second camera"),
    "cameras": ("", "namespaces of all cameras, e.g. [left, right, top] (2-16); empty = cam0_ns and cam1_ns"),
    "image_topic": ("image_raw", "image topic inside each camera namespace"),
    "use_compressed": ("false", "subscribe to <image_topic>/compressed instead"),
    "backend": ("mediapipe", "detector backend: mediapipe or onnx"),
    "model_path": ("", "ONNX model file for backend onnx"),
    "output_layout": ("coco17", "published joint layout: coco17 or h36m17"),
    "use_sim_time": ("false", "use /clock (bag replay)"),
}


def detector_node(namespace: str) -> Node:
    """One detector in the camera namespace `namespace`."""
    image = LaunchConfiguration("image_topic")
    overrides = {
        "backend": ParameterValue(LaunchConfiguration("backend"), value_type=str),
        "model_path": ParameterValue(LaunchConfiguration("model_path"), value_type=str),
        "output_layout": ParameterValue(LaunchConfiguration("output_layout"), value_type=str),
        "use_compressed": ParameterValue(LaunchConfiguration("use_compressed"), value_type=bool),
        "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
    }
    return Node(
        package=PACKAGE,
        executable="detector_node",
        name="detector",
        namespace=namespace,
        parameters=[LaunchConfiguration("detector_params"), overrides],
        remappings=[("image", image), ("image/compressed", [image, "/compressed"])],
        output="screen",
    )


def detectors(context) -> list[Node]:
    """One detector per camera of the `cameras` argument (or of cam0_ns and cam1_ns)."""
    namespaces = camera_namespaces(LaunchConfiguration("cameras").perform(context),
                                   LaunchConfiguration("cam0_ns").perform(context),
                                   LaunchConfiguration("cam1_ns").perform(context))
    return [detector_node(ns) for ns in namespaces]


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "detector.yaml"])
    arguments = [DeclareLaunchArgument("detector_params", default_value=default_params,
                                       description="detector parameter file")]
    arguments += [DeclareLaunchArgument(name, default_value=default, description=text)
                  for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription([*arguments, *launch_actions(), OpaqueFunction(function=detectors)])
