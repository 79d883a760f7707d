"""The whole perception pipeline from two (or more) cameras: a 2D detector per camera and the refiner node.

cam images -> detector_node x 2 (detectors.launch.py) -> <ns>/keypoints -> refiner_node (cvpose.launch.py) ->
skeletons, markers, TF. The refiner also reads each camera's `<ns>/camera_info`.
Example: ros2 launch cvpose_ros pipeline.launch.py cam0_ns:=left cam1_ns:=right image_topic:=image_rect_color \
             params_file:=my_rig.yaml            # or: cam1_translation:="[0.5, 0.0, 0.0]" cam1_rotation:=...
With `namespace:=rig_a` the detectors and the refiner all run inside /rig_a. More cameras:
`cameras:="[cam0, cam1, cam2, cam3]" params_file:=calib/refiner_extrinsics.yaml` (from `cvpose-calib --pair all`)
starts a detector per camera and runs the refiner with all of them; empty (default) = cam0_ns and cam1_ns.
The package's Fast DDS profile (config/fastdds_images.xml, unless FASTDDS_DEFAULT_PROFILES_FILE or `dds_profile`
is set) is set first, so every process of this launch gets it, including a camera driver given as
`camera_launch:=/path/to/camera.launch.py` (any launch file format): publisher and subscribers must share it.
"""

from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import AnyLaunchDescriptionSource, PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import PushRosNamespace
from launch_ros.substitutions import FindPackageShare

from cvpose_ros.ros.dds_profile import launch_actions
from launch import LaunchDescription

PACKAGE = "cvpose_ros"
# name -> (default, description); None = default computed in generate_launch_description
ARGUMENTS = {
    "cam0_ns": ("cam0", "namespace of the first camera"),
    "cam1_ns": ("cam1", "namespace of the second camera"),
    "cameras": ("", "namespaces of all cameras, e.g. [cam0, cam1, cam2] (2-16); empty = cam0_ns and cam1_ns"),
    "image_topic": ("image_raw", "image topic inside each camera namespace"),
    "use_compressed": ("false", "detectors subscribe to <image_topic>/compressed"),
    "backend": ("mediapipe", "detector backend: mediapipe or onnx"),
    "model_path": ("", "ONNX model file for backend onnx"),
    "output_layout": ("coco17", "detector joint layout: coco17 or h36m17"),
    "use_sim_time": ("false", "use /clock (bag replay)"),
    "rviz": ("false", "also start RViz with config/cvpose.rviz"),
    "detector_params": (None, "detector parameter file"),
    "params_file": (None, "refiner parameter file"),
    "namespace": ("", "namespace of the whole pipeline (detectors and refiner)"),
    "name": ("refiner_node", "name of the refiner node"),
    "cam0_translation": ("", "cam0.translation of the refiner as [x, y, z]; empty = params_file's"),
    "cam0_rotation": ("", "cam0.rotation of the refiner as [x, y, z, w]; empty = params_file's"),
    "cam1_translation": ("", "cam1.translation of the refiner as [x, y, z]; empty = params_file's"),
    "cam1_rotation": ("", "cam1.rotation of the refiner as [x, y, z, w]; empty = params_file's"),
    "managed": ("false", "start the lifecycle (managed) refiner"),
    "camera_launch": ("", "launch file of the camera driver(s), started here with the same DDS profile; empty = none"),
}
TO_DETECTORS = ("cam0_ns", "cam1_ns", "cameras", "image_topic", "use_compressed", "backend", "model_path",
                "output_layout", "use_sim_time", "detector_params")
TO_REFINER = ("cam0_ns", "cam1_ns", "cameras", "use_sim_time", "rviz", "params_file", "name", "cam0_translation",
              "cam0_rotation", "cam1_translation", "cam1_rotation", "managed")  # the same names in cvpose.launch.py


def include(share: FindPackageShare, launch_file: str, names: tuple[str, ...],
            fixed: dict[str, str] | None = None) -> IncludeLaunchDescription:
    """Include one of the package's launch files, passing our launch arguments `names` on under the same names
    (plus `fixed` literal values)."""
    arguments = {name: LaunchConfiguration(name) for name in names} | (fixed or {})
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", launch_file])),
        launch_arguments=arguments.items(),
    )


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    computed = {"detector_params": PathJoinSubstitution([share, "config", "detector.yaml"]),
                "params_file": PathJoinSubstitution([share, "config", "refiner.yaml"])}
    arguments = [DeclareLaunchArgument(name, default_value=computed.get(name, default), description=text)
                 for name, (default, text) in ARGUMENTS.items()]
    detectors = include(share, "detectors.launch.py", TO_DETECTORS)
    # The group pushes `namespace`; the refiner's own namespace argument must not add it a second time.
    refiner = include(share, "cvpose.launch.py", TO_REFINER, fixed={"namespace": ""})
    pipeline = GroupAction([PushRosNamespace(LaunchConfiguration("namespace")), detectors, refiner])
    # the camera driver keeps its own namespaces; it comes after the profile, like every other process here
    camera_launch = LaunchConfiguration("camera_launch")
    camera = IncludeLaunchDescription(AnyLaunchDescriptionSource(camera_launch),
                                      condition=IfCondition(PythonExpression(["'", camera_launch, "' != ''"])))
    return LaunchDescription([*arguments, *launch_actions(), camera, pipeline])
