"""The ROS 2 layer: nodes, message conversion, markers, TF, diagnostics, parameters and the demo graph (rclpy)."""
