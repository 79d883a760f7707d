"""`managed_refiner_node`: the refiner as a ROS 2 managed (lifecycle) node, for bringups that sequence their nodes.

Same topics, parameters and behaviour as `refiner_node` (they share `RefinerCore`); the states decide what runs:
- unconfigured: parameters are declared and validated (an invalid one stops the process, as for refiner_node);
- configure: load the refiner's weights, build the calibration cache and the publishers (a bad checkpoint or an
  unusable extrinsics source fails the transition with the reason in the log; the node stays unconfigured);
- activate: subscribe to the cameras and start /diagnostics; deactivate: stop both and forget queued frames and
  tracks (ids are still never reused); cleanup: release the weights and publishers; shutdown: all of it.

    ros2 run cvpose_ros managed_refiner_node --ros-args --params-file refiner.yaml
    ros2 lifecycle set /refiner_node configure && ros2 lifecycle set /refiner_node activate
"""

from __future__ import annotations

import sys

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from cvpose_ros.ros.entry import run_node
from cvpose_ros.ros.params import ParameterError
from cvpose_ros.ros.refiner_node import RefinerCore, StartupError


class ManagedRefinerNode(RefinerCore, LifecycleNode):
    """The refiner node with configure / activate / deactivate / cleanup / shutdown transitions."""

    def __init__(self, node_name: str = "refiner_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._declare_parameters()
        self._active = False

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except StartupError as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self._cleanup()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._activate()
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self._active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._active:
            self._deactivate()
            self._active = False
        if self._configured:
            self._cleanup()
        return TransitionCallbackReturn.SUCCESS


def main(args: list[str] | None = None) -> int:
    """Console entry point (`managed_refiner_node`); exit status 1 on an invalid parameter."""
    return run_node(ManagedRefinerNode, "managed_refiner_node: cannot start: ", (ParameterError,), args)


if __name__ == "__main__":
    sys.exit(main())
