"""The whole perception pipeline from two cameras: two 2D detectors and the refiner node.

cam images -> detector_node x 2 (detectors.launch.py) -> <ns>/keypoints -> refiner_node (cvpose.launch.py) ->
skeletons, markers, TF. The refiner also reads each camera's `<ns>/camera_info`.
Example: ros2 launch cvpose_ros pipeline.launch.py cam0_ns:=left cam1_ns:=right image_topic:=image_rect_color
"""

from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

PACKAGE = "cvpose_ros"
# name -> (default, description); None = default computed in generate_launch_description
ARGUMENTS = {
    "cam0_ns": ("cam0", "namespace of the first camera"),
    "cam1_ns": ("cam1", "namespace of the second camera"),
    "image_topic": ("image_raw", "image topic inside each camera namespace"),
    "use_compressed": ("false", "detectors subscribe to <image_topic>/compressed"),
    "backend": ("mediapipe", "detector backend: mediapipe or onnx"),
    "model_path": ("", "ONNX model file for backend onnx"),
    "output_layout": ("coco17", "detector joint layout: coco17 or h36m17"),
    "use_sim_time": ("false", "use /clock (bag replay)"),
    "rviz": ("false", "also start RViz with config/cvpose.rviz"),
    "detector_params": (None, "detector parameter file"),
    "refiner_params": (None, "refiner parameter file"),
}
TO_DETECTORS = ("cam0_ns", "cam1_ns", "image_topic", "use_compressed", "backend", "model_path", "output_layout",
                "use_sim_time", "detector_params")
TO_REFINER = {"cam0_ns": "cam0_ns", "cam1_ns": "cam1_ns", "use_sim_time": "use_sim_time", "rviz": "rviz",
              "params_file": "refiner_params"}  # cvpose.launch.py argument -> ours


def include(share: FindPackageShare, launch_file: str, arguments: dict[str, str]) -> IncludeLaunchDescription:
    """Include one of the package's launch files, passing our launch arguments on under their names there."""
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", launch_file])),
        launch_arguments={theirs: LaunchConfiguration(ours) for theirs, ours in arguments.items()}.items(),
    )


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    computed = {"detector_params": PathJoinSubstitution([share, "config", "detector.yaml"]),
                "refiner_params": PathJoinSubstitution([share, "config", "refiner.yaml"])}
    arguments = [DeclareLaunchArgument(name, default_value=computed.get(name, default), description=text)
                 for name, (default, text) in ARGUMENTS.items()]
    detectors = include(share, "detectors.launch.py", {name: name for name in TO_DETECTORS})
    refiner = include(share, "cvpose.launch.py", TO_REFINER)
    return LaunchDescription([*arguments, detectors, refiner])
