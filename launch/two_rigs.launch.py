"""Two camera rigs side by side: one refiner per rig, each in its own namespace (documented in
docs/refiner_node.md, "Several instances").

    ros2 launch cvpose_ros two_rigs.launch.py rig_a_params:=rig_a.yaml rig_b_params:=rig_b.yaml

Rig A's node is /rig_a/refiner_node: it reads /rig_a/cam0/keypoints, /rig_a/cam1/keypoints (and camera_info),
publishes /rig_a/skeletons, person frames `rig_a/body_<id>` on /tf and the status
`rig_a/cvpose_refiner: pipeline` on /diagnostics; rig B the same under rig_b. Nothing is shared but /tf and
/diagnostics, where the names differ.
"""

from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

RIGS = ("rig_a", "rig_b")


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("cvpose_ros")
    default_params = PathJoinSubstitution([share, "config", "refiner.yaml"])
    arguments = [DeclareLaunchArgument(f"{rig}_params", default_value=default_params,
                                       description=f"refiner parameter file of {rig}") for rig in RIGS]
    arguments.append(DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock"))
    rigs = [IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "cvpose.launch.py"])),
        launch_arguments={"namespace": rig, "params_file": LaunchConfiguration(f"{rig}_params"),
                          "use_sim_time": LaunchConfiguration("use_sim_time")}.items(),
    ) for rig in RIGS]
    return LaunchDescription([*arguments, *rigs])
