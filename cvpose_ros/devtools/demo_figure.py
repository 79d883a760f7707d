"""The demo's picture: a few frames of 3D skeletons, ground truth vs triangulation vs refinement (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cvpose_ros.body.skeleton import Layout, get_layout

STYLES = {"truth": ("black", "-", 2.2), "triangulation": ("tab:orange", "--", 1.4), "refined": ("tab:blue", "-", 1.4)}


def _draw(ax, joints: np.ndarray, style: tuple[str, str, float], label: str | None, layout: Layout) -> None:
    """Bones (the layout's body graph) of (P, J, 3) skeletons as one line collection per person (NaN joints break
    the line)."""
    color, line, width = style
    bones = layout.edge_array
    for person in joints:
        seg = np.stack([person[bones[:, 0]], person[bones[:, 1]]], axis=1)  # (B, 2, 3)
        seg = np.concatenate([seg, np.full((len(seg), 1, 3), np.nan)], axis=1).reshape(-1, 3)
        ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], color=color, linestyle=line, linewidth=width, label=label)
        label = None


def _nearest(skeletons: np.ndarray, root: np.ndarray, layout: Layout) -> np.ndarray:
    """The skeleton of (P, J, 3) whose root is nearest to `root` (empty when none has one)."""
    if len(skeletons) == 0:
        return skeletons
    d = np.linalg.norm(layout.root_of(skeletons) - root, axis=-1)
    return skeletons[[int(np.nanargmin(np.where(np.isfinite(d), d, np.inf)))]] if np.isfinite(d).any() \
        else skeletons[:0]


def _panel(ax, frame: dict[str, np.ndarray], centre: np.ndarray, half: float, legend: bool, title: str,
           layout: Layout) -> None:
    for name, style in STYLES.items():
        if name in frame and len(frame[name]):
            _draw(ax, frame[name], style, name if legend else None, layout)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(0.0, 2 * half)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=12, azim=-60)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("z (m)")
    ax.set_title(title, fontsize=10)


def save_skeleton_figure(path: str | Path, frames: list[dict[str, np.ndarray]], titles: list[str],
                         summary: str = "", layout: str = "h36m17") -> Path:
    """Write a PNG with one column per frame: the whole scene on top, a close-up of one person below.

    Each frame maps "truth"/"triangulation"/"refined" to (P, J, 3) skeletons in a z-up world frame (metres), in the
    joint definition `layout`.
    """
    lay = get_layout(layout)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = len(frames)
    fig = plt.figure(figsize=(4.6 * cols, 9.4))
    for k, (frame, title) in enumerate(zip(frames, titles, strict=True)):
        truth = frame["truth"]
        everything = np.concatenate([f.reshape(-1, 3) for f in frame.values() if len(f)])
        everything = everything[np.isfinite(everything).all(axis=1)]
        centre = (everything.min(0) + everything.max(0)) / 2
        half = max(float((everything.max(0)[:2] - everything.min(0)[:2]).max()) / 2 + 0.3, 1.0)
        _panel(fig.add_subplot(2, cols, k + 1, projection="3d"), frame, centre, half, k == 0, f"{title}: all people",
               lay)
        root = lay.root_of(truth[k % len(truth)])
        close = {name: _nearest(sk, root, lay) for name, sk in frame.items()}
        _panel(fig.add_subplot(2, cols, cols + k + 1, projection="3d"), close, root, 1.0, False,
               f"{title}: one person, close up", lay)
    fig.legend(loc="upper left", fontsize=10)
    if summary:
        fig.suptitle(summary, fontsize=12)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
