"""cvpose_ros: 3D human skeletons from two calibrated cameras (triangulation refined by CV-UGCN)."""

__version__ = "0.1.0"
