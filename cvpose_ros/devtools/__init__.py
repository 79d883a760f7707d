"""Demo and development tools: synthetic scenes, detector noise, scoring, rosbag I/O, the demo itself."""
