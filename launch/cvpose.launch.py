"""Start the cvpose_ros refiner node with its parameter file, camera namespaces and (optionally) RViz.

    ros2 launch cvpose_ros cvpose.launch.py cam0_ns:=/left cam1_ns:=/right params_file:=/path/to/refiner.yaml
    ros2 launch cvpose_ros cvpose.launch.py namespace:=rig_a cam1_translation:="[0.5, 0.0, 0.0]"
    ros2 launch cvpose_ros cvpose.launch.py cameras:="[left, right, top]" params_file:=calib/refiner_extrinsics.yaml

The node subscribes `<camX_ns>/keypoints` and `<camX_ns>/camera_info` through remappings (relative names resolve
inside `namespace`). `cameras` (a list of 2-16 namespaces; "" = `cam0_ns`, `cam1_ns`) runs the node with that many
cameras: camera i's topics are remapped to `<cameras[i]>/...` and the node's `cameras` parameter becomes
[cam0, ..., cam<N-1>]; the poses of cameras 2 and up come from `params_file` (`cvpose-calib --pair all` writes them).
In a namespace its person TF frames and diagnostics name carry the namespace (`tf_prefix` and
`diagnostics_name` default to `{ns}`), so several instances run side by side (see two_rigs.launch.py).
`cam1_translation` / `cam1_rotation` (and the cam0 ones), when given, override the parameter file's camera pose;
`managed:=true` starts the lifecycle variant (`managed_refiner_node`), which waits for configure/activate.
Every process gets the package's Fast DDS profile (config/fastdds_images.xml) unless FASTDDS_DEFAULT_PROFILES_FILE
or `dds_profile` is set.
"""

import yaml
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from cvpose_ros.ros.camera_list import camera_namespaces, refiner_cameras, refiner_remappings
from cvpose_ros.ros.dds_profile import launch_actions
from launch import LaunchDescription

POSE_ARGUMENTS = {  # launch argument -> node parameter; "" = keep the parameter file's value
    "cam0_translation": "cam0.translation", "cam0_rotation": "cam0.rotation",
    "cam1_translation": "cam1.translation", "cam1_rotation": "cam1.rotation",
}


def pose_overrides(context) -> dict:
    """Node parameters for the camera-pose launch arguments that were given ("[x, y, z]" / "[x, y, z, w]")."""
    overrides = {}
    for argument, parameter in POSE_ARGUMENTS.items():
        text = LaunchConfiguration(argument).perform(context).strip()
        if text:
            values = yaml.safe_load(text)
            if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
                raise ValueError(f"launch argument {argument} must be a list of numbers like [0.5, 0.0, 0.0], "
                                 f"got {text!r}")
            overrides[parameter] = [float(v) for v in values]
    return overrides


def refiner(context) -> list:
    cameras = LaunchConfiguration("cameras").perform(context)
    namespaces = camera_namespaces(cameras, LaunchConfiguration("cam0_ns").perform(context),
                                   LaunchConfiguration("cam1_ns").perform(context))
    managed = LaunchConfiguration("managed").perform(context).lower() in ("true", "1", "yes")
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    return [Node(
        package="cvpose_ros",
        executable="managed_refiner_node" if managed else "refiner_node",
        name=LaunchConfiguration("name"),
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[LaunchConfiguration("params_file"), {"use_sim_time": use_sim_time, **pose_overrides(context),
                                                         **refiner_cameras(cameras, namespaces)}],
        remappings=refiner_remappings(namespaces),
    )]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("cvpose_ros")
    arguments = [
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([share, "config", "refiner.yaml"]),
                              description="Parameter file of the refiner node"),
        DeclareLaunchArgument("namespace", default_value="", description="Namespace of the refiner node"),
        DeclareLaunchArgument("name", default_value="refiner_node", description="Name of the refiner node"),
        DeclareLaunchArgument("cam0_ns", default_value="cam0", description="Namespace of camera 0's topics"),
        DeclareLaunchArgument("cam1_ns", default_value="cam1", description="Namespace of camera 1's topics"),
        DeclareLaunchArgument("cameras", default_value="", description="Namespaces of all cameras, e.g. "
                              "[left, right, top] (2-16); empty = cam0_ns and cam1_ns"),
        *(DeclareLaunchArgument(argument, default_value="", description=f"{parameter} as [numbers]; empty = the "
                                                                         "parameter file's")
          for argument, parameter in POSE_ARGUMENTS.items()),
        DeclareLaunchArgument("managed", default_value="false",
                              description="Start the lifecycle (managed) refiner; it waits for configure/activate"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="Use /clock (bag replay)"),
        DeclareLaunchArgument("rviz", default_value="false", description="Also start RViz with config/cvpose.rviz"),
    ]
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        namespace=LaunchConfiguration("namespace"),
        arguments=["-d", PathJoinSubstitution([share, "config", "cvpose.rviz"])],
        parameters=[{"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)}],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return LaunchDescription([*arguments, *launch_actions(), OpaqueFunction(function=refiner), rviz])
