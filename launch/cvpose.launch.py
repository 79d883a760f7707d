"""Start the cvpose_ros refiner node with its parameter file, camera namespaces and (optionally) RViz.

    ros2 launch cvpose_ros cvpose.launch.py cam0_ns:=/left cam1_ns:=/right params_file:=/path/to/refiner.yaml

The node subscribes `<camX_ns>/keypoints` and `<camX_ns>/camera_info` through remappings.
"""

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("cvpose_ros")
    params_file = LaunchConfiguration("params_file")
    cam0_ns = LaunchConfiguration("cam0_ns")
    cam1_ns = LaunchConfiguration("cam1_ns")
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    arguments = [
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([share, "config", "refiner.yaml"]),
                              description="Parameter file of the refiner node"),
        DeclareLaunchArgument("cam0_ns", default_value="cam0", description="Namespace of camera 0's topics"),
        DeclareLaunchArgument("cam1_ns", default_value="cam1", description="Namespace of camera 1's topics"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="Use /clock (bag replay)"),
        DeclareLaunchArgument("rviz", default_value="false", description="Also start RViz with config/cvpose.rviz"),
    ]
    refiner = Node(
        package="cvpose_ros",
        executable="refiner_node",
        name="refiner_node",
        output="screen",
        parameters=[params_file, {"use_sim_time": use_sim_time}],
        remappings=[
            ("cam0/keypoints", [cam0_ns, "/keypoints"]),
            ("cam0/camera_info", [cam0_ns, "/camera_info"]),
            ("cam1/keypoints", [cam1_ns, "/keypoints"]),
            ("cam1/camera_info", [cam1_ns, "/camera_info"]),
        ],
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", PathJoinSubstitution([share, "config", "cvpose.rviz"])],
        parameters=[{"use_sim_time": use_sim_time}],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return LaunchDescription([*arguments, refiner, rviz])
