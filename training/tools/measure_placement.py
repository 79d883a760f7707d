"""Where COCO-style keypoints sit on a body: bone lengths, a head model and body-frame offsets (mm, degrees).

Sources (any mix, each given on the command line):

* CMU Panoptic `hdPose3d_stage1_coco19/body3DScene_*.json` (`--panoptic DIR`, searched recursively): 19 joints in
  centimetres with a confidence, y down. Joint order (checked against the data by the `checks` section: shoulder,
  hip, eye and ear lines agree on "left", the nose lies forward of `left x up`): 0 neck, 1 nose, 2 body centre,
  3-5 l shoulder/elbow/wrist, 6-8 l hip/knee/ankle, 9-11 r shoulder/elbow/wrist, 12-14 r hip/knee/ankle, 15 l eye,
  16 l ear, 17 r eye, 18 r ear. A person is one `id` of one sequence (consecutive frames); joints below
  `--min-conf` (-1 = not reconstructed, position 0) or further than `--max-jump` from their own 7-frame median
  (reconstruction failures) are left out.
* Human3.6M-placement skeletons as the training code generates them (`--motion FILE`): frames of a motion file
  rebuilt by `training.data.motion.rebuild_poses` with `sample_bone_lengths` (one length draw per frame, as
  `motion_samples` does). h36m17 has no eyes or ears; its joint 9 ("neck/nose") and 10 (head top) are reported
  in the rows that name them.
* 3D COCO-17 poses (`--coco17-npz FILE`): key `poses` (F, 17, 3) metres in any frame, COCO-17 order, NaN where
  missing; optional key `person` (F,) labels.

Frames (all right-handed):

* BODY: origin mid-shoulder; left = unit(l_shoulder - r_shoulder); up = mid-shoulder - mid-hip made orthogonal to
  left; forward = left x up (the nose's side; `checks.nose_forward_fraction`). Coordinates are (left, up, forward).
* HEAD: origin mid-ears; x = unit(l_ear - r_ear) (left); z = nose - mid-ears made orthogonal to x (forward, so
  the nose has y = 0 by construction); y = z x x (up). Coordinates are (x left, y up, z forward).
* Head angles: head axes in the body frame R = Ry(yaw) Rx(pitch) Rz(roll) (about up, left, forward): yaw > 0 the
  head turned to its left, pitch > 0 the nose tipped down, roll > 0 the left ear raised (head tilted to the right
  shoulder). Pitch is that of the nose line from mid-ears, so an upright head reads a positive pitch.

"mid-hip" is the midpoint of the two COCO hips; "pelvis" is Panoptic's body centre (joint 2) or h36m joint 0.
Statistics are over frames (std with ddof=0); `between_person_sd` is the std of the per-person means.

    python -m training.tools.measure_placement --panoptic DATA/panoptic --motion DATA/motion/cmu.npz \\
        --json placement.json --markdown placement.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

COCO17_NAMES = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
                "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")
PANOPTIC19_NAMES = ("neck", "nose", "pelvis", "l_shoulder", "l_elbow", "l_wrist", "l_hip", "l_knee", "l_ankle",
                    "r_shoulder", "r_elbow", "r_wrist", "r_hip", "r_knee", "r_ankle", "l_eye", "l_ear", "r_eye",
                    "r_ear")
H36M17_NAMES = ("pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax", "h36m_j9",
                "h36m_j10", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")
MIDPOINTS = {"mid_shoulder": ("l_shoulder", "r_shoulder"), "mid_hip": ("l_hip", "r_hip"), "mid_ear": ("l_ear", "r_ear")}


def _pairs(*names: str) -> list[tuple[str, str]]:
    return [tuple(n.split(">")) for n in names]


# key -> (label, candidate definitions: the first whose points a source has is used; a definition lists the
# segments whose lengths are pooled, e.g. left and right).
LENGTHS: dict[str, tuple[str, list[list[tuple[str, str]]]]] = {
    "mid_shoulder_to_nose": ("mid-shoulder -> nose [H36M: -> j9 neck/nose]",
                             [_pairs("mid_shoulder>nose"), _pairs("mid_shoulder>h36m_j9")]),
    "neck_to_mid_shoulder": ("neck -> mid-shoulder [Panoptic neck; H36M thorax j8]",
                             [_pairs("neck>mid_shoulder"), _pairs("thorax>mid_shoulder")]),
    "neck_to_nose": ("neck -> nose [H36M: thorax j8 -> j9]", [_pairs("neck>nose"), _pairs("thorax>h36m_j9")]),
    "j9_to_head_top": ("j9 -> head top j10 (H36M)", [_pairs("h36m_j9>h36m_j10")]),
    "nose_to_l_eye": ("nose -> l_eye", [_pairs("nose>l_eye")]),
    "nose_to_r_eye": ("nose -> r_eye", [_pairs("nose>r_eye")]),
    "eye_to_ear": ("eye -> ear (L+R)", [_pairs("l_eye>l_ear", "r_eye>r_ear")]),
    "eye_to_eye": ("eye -> eye", [_pairs("l_eye>r_eye")]),
    "nose_to_mid_ear": ("nose -> mid-ears", [_pairs("nose>mid_ear")]),
    "ear_to_ear": ("ear -> ear", [_pairs("l_ear>r_ear")]),
    "shoulder_to_shoulder": ("shoulder -> shoulder", [_pairs("l_shoulder>r_shoulder")]),
    "hip_to_hip": ("hip -> hip", [_pairs("l_hip>r_hip")]),
    "pelvis_to_hip": ("pelvis -> hip (L+R) [Panoptic body centre; H36M j0]",
                      [_pairs("pelvis>l_hip", "pelvis>r_hip")]),
    "mid_shoulder_to_mid_hip": ("mid-shoulder -> mid-hip", [_pairs("mid_shoulder>mid_hip")]),
    "neck_to_pelvis": ("neck -> pelvis [H36M: thorax j8 -> j0]", [_pairs("neck>pelvis"), _pairs("thorax>pelvis")]),
    "shoulder_to_elbow": ("shoulder -> elbow (L+R)", [_pairs("l_shoulder>l_elbow", "r_shoulder>r_elbow")]),
    "elbow_to_wrist": ("elbow -> wrist (L+R)", [_pairs("l_elbow>l_wrist", "r_elbow>r_wrist")]),
    "hip_to_knee": ("hip -> knee (L+R)", [_pairs("l_hip>l_knee", "r_hip>r_knee")]),
    "knee_to_ankle": ("knee -> ankle (L+R)", [_pairs("l_knee>l_ankle", "r_knee>r_ankle")]),
}

# key -> (label, candidate points, origin): positions in the BODY frame axes.
BODY_POINTS: dict[str, tuple[str, list[str], str]] = {
    "nose": ("nose [H36M: j9] from mid-shoulder", ["nose", "h36m_j9"], "mid_shoulder"),
    "mid_ear": ("mid-ears from mid-shoulder", ["mid_ear"], "mid_shoulder"),
    "head_top": ("head top j10 (H36M) from mid-shoulder", ["h36m_j10"], "mid_shoulder"),
    "neck": ("neck [H36M: thorax j8] from mid-shoulder", ["neck", "thorax"], "mid_shoulder"),
    "mid_hip": ("mid-hip from mid-shoulder", ["mid_hip"], "mid_shoulder"),
    "l_hip_from_mid_hip": ("l_hip from mid-hip", ["l_hip"], "mid_hip"),
    "r_hip_from_mid_hip": ("r_hip from mid-hip", ["r_hip"], "mid_hip"),
    "mid_hip_from_pelvis": ("mid-hip from pelvis", ["mid_hip"], "pelvis"),
    "l_hip_from_pelvis": ("l_hip from pelvis", ["l_hip"], "pelvis"),
    "r_hip_from_pelvis": ("r_hip from pelvis", ["r_hip"], "pelvis"),
}
BODY_SCALARS = {
    "shoulder_half_width": "shoulder half-width (l-r length / 2)",
    "hip_half_width": "hip half-width ((l-r).left / 2)",
    "hip_up_from_pelvis": "mid-hip above pelvis (.up)",
    "hip_forward_from_pelvis": "mid-hip ahead of pelvis (.forward)",
}
HEAD_POINTS = ("nose", "l_eye", "r_eye", "l_ear", "r_ear")
ANGLES = ("yaw", "pitch", "roll")
LR_PAIRS = ("eye", "ear", "elbow", "wrist", "hip", "knee", "ankle")


@dataclass
class Source:
    """Named 3D points (F, 3) in millimetres (NaN where missing) of F frames, and whose each frame is."""

    name: str
    kind: str
    points: dict[str, np.ndarray]
    person: np.ndarray  # (F,) str


# ---------------------------------------------------------------------------------------------------- sources
def load_panoptic(paths: list[str | Path], min_conf: float, max_jump: float = 0.0) -> Source:
    files = []
    for p in map(Path, paths):
        files += [p] if p.is_file() else sorted(p.rglob("body3DScene_*.json"))
    if not files:
        raise SystemExit(f"no body3DScene_*.json under {[str(p) for p in paths]}")
    rows, person = [], []
    for f in files:
        seq = f.parent.parent.name if f.parent.name.startswith("hdPose3d") else f.parent.name
        frame = int(re.sub(r"\D", "", f.stem) or 0)
        for body in json.loads(f.read_text())["bodies"]:
            rows.append((f"{seq}/{body['id']}", frame, np.asarray(body["joints19"], float).reshape(19, 4)))
    rows.sort(key=lambda r: (r[0], r[1]))
    arr = np.stack([r[2] for r in rows])
    xyz = np.where((arr[..., 3:] >= min_conf) & (arr[..., 3:] > 0), arr[..., :3] * 10.0, np.nan)  # cm -> mm
    person = np.array([r[0] for r in rows])
    if max_jump > 0:
        xyz = drop_jumps(xyz, person, max_jump)
    return Source("panoptic", "CMU Panoptic coco19", {n: xyz[:, j] for j, n in enumerate(PANOPTIC19_NAMES)}, person)


def drop_jumps(xyz: np.ndarray, person: np.ndarray, max_jump: float, half_window: int = 3) -> np.ndarray:
    """NaN where a joint lies more than `max_jump` mm from its median over the person's frames t-3..t+3
    (reconstruction failures jump by decimetres; real motion moves a joint by a few cm in 0.1 s)."""
    out = xyz.copy()
    for p in np.unique(person):
        idx = np.flatnonzero(person == p)
        x = xyz[idx]
        for t in range(len(idx)):
            window = x[max(0, t - half_window):t + half_window + 1]
            ok = np.isfinite(window).all(-1).sum(0) > 0
            med = np.full(x.shape[1:], np.nan)
            med[ok] = np.nanmedian(window[:, ok], axis=0)
            out[idx[t], np.linalg.norm(x[t] - med, axis=-1) > max_jump] = np.nan
    return out


def generated_h36m(paths: list[str | Path], frames: int, stride: int, seed: int) -> Source:
    from training.data.motion import load_motion, rebuild_poses, sample_bone_lengths

    seqs = load_motion(paths, stride=stride)
    allf = np.concatenate([seqs[k] for k in sorted(seqs)])
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(allf), size=min(frames, len(allf)), replace=False))
    poses = rebuild_poses(allf[pick], sample_bone_lengths(len(pick), rng)) * 1000.0
    name = "h36m_generated"
    return Source(name, "Human3.6M placement (motion.rebuild_poses)",
                  {n: poses[:, j] for j, n in enumerate(H36M17_NAMES)}, np.full(len(pick), name))


def load_coco17_npz(path: str | Path) -> Source:
    with np.load(path) as data:
        poses = np.asarray(data["poses"], float)
        person = np.asarray(data["person"]).astype(str) if "person" in data.files else None
    if poses.ndim != 3 or poses.shape[1:] != (17, 3):
        raise SystemExit(f"{path}: 'poses' must be (F, 17, 3) metres, got {poses.shape}")
    name = Path(path).stem
    person = person if person is not None else np.full(len(poses), name)
    return Source(name, "COCO-17 npz", {n: poses[:, j] * 1000.0 for j, n in enumerate(COCO17_NAMES)}, person)


# ------------------------------------------------------------------------------------------------ geometry
def _point(pts: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    if name in pts:
        return pts[name]
    if name in MIDPOINTS and all(n in pts for n in MIDPOINTS[name]):
        a, b = MIDPOINTS[name]
        return 0.5 * (pts[a] + pts[b])
    return None


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def body_axes(pts: dict[str, np.ndarray]) -> np.ndarray | None:
    """(F, 3, 3) rows left, up, forward in the source's frame (NaN where a shoulder or hip is missing)."""
    need = [_point(pts, n) for n in ("l_shoulder", "r_shoulder", "mid_shoulder", "mid_hip")]
    if any(p is None for p in need):
        return None
    ls, rs, ms, mh = need
    left = _unit(ls - rs)
    up = ms - mh
    up = _unit(up - np.sum(up * left, -1, keepdims=True) * left)
    return np.stack([left, up, np.cross(left, up)], axis=1)


def head_axes(pts: dict[str, np.ndarray]) -> np.ndarray | None:
    """(F, 3, 3) rows x (left), y (up), z (forward) of the HEAD frame."""
    if any(_point(pts, n) is None for n in ("l_ear", "r_ear", "nose")):
        return None
    x = _unit(pts["l_ear"] - pts["r_ear"])
    z = pts["nose"] - _point(pts, "mid_ear")
    z = _unit(z - np.sum(z * x, -1, keepdims=True) * x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def head_angles(body: np.ndarray, head: np.ndarray) -> np.ndarray:
    """(F, 3) yaw, pitch, roll in degrees of the head axes in the body frame (R = Ry(yaw) Rx(pitch) Rz(roll))."""
    m = body @ np.swapaxes(head, -1, -2)  # columns: head axes in body coordinates
    yaw = np.arctan2(m[:, 0, 2], m[:, 2, 2])
    pitch = np.arcsin(np.clip(-m[:, 1, 2], -1.0, 1.0))
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    ry = np.zeros_like(m)
    ry[:, 0, 0], ry[:, 0, 2], ry[:, 1, 1], ry[:, 2, 0], ry[:, 2, 2] = cy, sy, 1.0, -sy, cy
    rx = np.zeros_like(m)
    rx[:, 0, 0], rx[:, 1, 1], rx[:, 1, 2], rx[:, 2, 1], rx[:, 2, 2] = 1.0, cp, -sp, sp, cp
    rz = np.swapaxes(rx, -1, -2) @ np.swapaxes(ry, -1, -2) @ m
    roll = np.arctan2(rz[:, 1, 0], rz[:, 0, 0])
    return np.degrees(np.stack([yaw, pitch, roll], -1))


# --------------------------------------------------------------------------------------------- measurement
def per_frame(src: Source) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, str]]:
    """Per-frame measurements {group: {key: (F, k) or (F, k, 3)}} and the definition each key used."""
    pts, out, defs = src.points, {g: {} for g in ("lengths", "body_frame", "body_scalars", "head_frame",
                                                   "head_angles")}, {}
    for key, (_, candidates) in LENGTHS.items():
        for segs in candidates:
            ends = [(_point(pts, a), _point(pts, b)) for a, b in segs]
            if all(a is not None and b is not None for a, b in ends):
                out["lengths"][key] = np.stack([np.linalg.norm(a - b, axis=-1) for a, b in ends], axis=1)
                defs[f"lengths.{key}"] = ", ".join(f"{a}->{b}" for a, b in segs)
                break
    body = body_axes(pts)
    if body is not None:
        for key, (_, names, origin) in BODY_POINTS.items():
            o = _point(pts, origin)
            name = next((n for n in names if _point(pts, n) is not None), None)
            if o is not None and name is not None:
                out["body_frame"][key] = np.einsum("fij,fj->fi", body, _point(pts, name) - o)[:, None]
                defs[f"body_frame.{key}"] = f"{name} - {origin}"
        ls, rs, lh, rh = (pts[n] for n in ("l_shoulder", "r_shoulder", "l_hip", "r_hip"))
        scal = out["body_scalars"]
        scal["shoulder_half_width"] = 0.5 * np.linalg.norm(ls - rs, axis=-1)[:, None]
        scal["hip_half_width"] = 0.5 * np.sum((lh - rh) * body[:, 0], -1)[:, None]
        if "pelvis" in pts:
            rel = _point(pts, "mid_hip") - pts["pelvis"]
            scal["hip_up_from_pelvis"] = np.sum(rel * body[:, 1], -1)[:, None]
            scal["hip_forward_from_pelvis"] = np.sum(rel * body[:, 2], -1)[:, None]
    head = head_axes(pts)
    if head is not None:
        origin = _point(pts, "mid_ear")
        for name in HEAD_POINTS:
            out["head_frame"][name] = np.einsum("fij,fj->fi", head, pts[name] - origin)[:, None]
        if body is not None:
            ang = head_angles(body, head)
            for i, name in enumerate(ANGLES):
                out["head_angles"][name] = ang[:, i:i + 1]
    return out, defs


def _stats(x: np.ndarray) -> dict | None:
    """mean/std/min/max/n over the finite rows of (N,) or (N, 3)."""
    x = x[np.isfinite(x).all(-1)] if x.ndim == 2 else x[np.isfinite(x)]
    if not len(x):
        return None

    def r(v):
        return np.round(v, 1).tolist()

    return {"mean": r(x.mean(0)), "std": r(x.std(0)), "min": r(x.min(0)), "max": r(x.max(0)), "n": int(len(x))}


def summarise(frames: dict[str, dict[str, np.ndarray]], mask: np.ndarray) -> dict:
    out = {}
    for group, items in frames.items():
        out[group] = {}
        for key, arr in items.items():
            sel = arr[mask]
            out[group][key] = _stats(sel.reshape(-1, 3) if sel.ndim == 3 else sel.reshape(-1))
    return out


def checks(src: Source, frames: dict) -> dict:
    """Consistency of the joint order: left/right lines agree with the shoulders', nose forward, symmetry."""
    pts, body, res = src.points, body_axes(src.points), {}
    if body is None:
        return res
    nose = frames["body_frame"].get("nose")
    if nose is not None:
        f = nose[:, 0, 2]
        res["nose_forward_fraction"] = round(float(np.mean(f[np.isfinite(f)] > 0)), 3)
    for part in LR_PAIRS:
        names = [n for n in pts if n.endswith(part) and n[:2] in ("l_", "r_")]
        if len(names) == 2:
            d = np.sum((pts[f"l_{part}"] - pts[f"r_{part}"]) * body[:, 0], -1)
            d = d[np.isfinite(d)]
            if len(d):
                res[f"{part}_left_of_right_fraction"] = round(float(np.mean(d > 0)), 3)
    for key in ("eye_to_ear", "shoulder_to_elbow", "elbow_to_wrist", "hip_to_knee", "knee_to_ankle"):
        arr = frames["lengths"].get(key)
        if arr is not None:
            d = arr[:, 0] - arr[:, 1]
            d = d[np.isfinite(d)]
            if len(d):
                res[f"{key}_left_minus_right_mm"] = round(float(d.mean()), 1)
    return res


def measure(src: Source) -> dict:
    frames, defs = per_frame(src)
    persons = sorted(set(src.person.tolist()))
    per_person = {p: summarise(frames, src.person == p) for p in persons}
    between = {}
    for group, items in frames.items():
        between[group] = {}
        for key in items:
            means = [per_person[p][group][key]["mean"] for p in persons if per_person[p][group][key] is not None]
            if len(means) > 1:
                between[group][key] = np.round(np.std(np.array(means, float), axis=0), 1).tolist()
    return {"kind": src.kind, "frames": int(len(src.person)), "persons": persons, "definitions": defs,
            "checks": checks(src, frames), "pooled": summarise(frames, np.ones(len(src.person), bool)),
            "between_person_sd": between, "per_person": per_person}


# ------------------------------------------------------------------------------------------------- output
def _fmt(s: dict | None, vector: bool = False, ranged: bool = False) -> str:
    if s is None:
        return "-"
    if vector:
        return " / ".join(f"{m:.0f}±{d:.0f}" for m, d in zip(s["mean"], s["std"], strict=True)) + f" ({s['n']})"
    text = f"{s['mean']:.1f} ± {s['std']:.1f}"
    if ranged:
        text += f" [{s['min']:.0f}, {s['max']:.0f}]"
    return text + f" ({s['n']})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |"
                                                                             for r in rows]


def markdown(result: dict) -> str:
    srcs = result["sources"]
    names = list(srcs)
    lines = ["# Keypoint placement", "",
             "mean ± std over frames (n); mm and degrees. Frames and definitions: "
             "`training/tools/measure_placement.py`. "
             f"Panoptic joints with confidence < {result['min_conf']} or more than {result['max_jump_mm']:.0f} mm "
             "from their 7-frame median left out.", ""]

    def section(title, group, labels, vector=False, ranged=False, note=""):
        rows = []
        for key, label in labels.items():
            cells = [_fmt(srcs[n]["pooled"][group].get(key), vector, ranged) for n in names]
            if any(c != "-" for c in cells):
                rows.append([label] + cells)
        if rows:
            lines.extend([f"## {title}", ""] + ([note, ""] if note else []) + _table(["", *names], rows) + [""])

    section("Lengths", "lengths", {k: v[0] for k, v in LENGTHS.items()})
    section("Body frame positions (left / up / forward)", "body_frame", {k: v[0] for k, v in BODY_POINTS.items()},
            vector=True, note="BODY frame: origin as named, left = l_sho - r_sho, up = mid-sho - mid-hip "
                              "orthogonalised, forward = left x up.")
    section("Body frame scalars", "body_scalars", BODY_SCALARS)
    section("Head model (x left / y up / z forward, origin mid-ears)", "head_frame",
            {n: n for n in HEAD_POINTS}, vector=True,
            note="HEAD frame: x = l_ear - r_ear, z = nose - mid-ears orthogonalised to x, y = z x x.")
    section("Head angles relative to the body frame [min, max]", "head_angles",
            {"yaw": "yaw (+ = turned left)", "pitch": "pitch (+ = nose down)", "roll": "roll (+ = left ear up)"},
            ranged=True)
    for n in names:
        persons = srcs[n]["persons"]
        if len(persons) < 2:
            continue
        rows = []
        for key, (label, _) in LENGTHS.items():
            cells = [_fmt(srcs[n]["per_person"][p]["lengths"].get(key)) for p in persons]
            if any(c != "-" for c in cells):
                sd = srcs[n]["between_person_sd"]["lengths"].get(key)
                rows.append([label] + cells + ["-" if sd is None else f"{sd:.1f}"])
        lines.extend([f"## {n}: lengths per person", ""] + _table(["", *persons, "between-person sd"], rows) + [""])
        rows = []
        for group, key, label, vector in [("body_frame", "nose", "nose from mid-shoulder (l/u/f)", True),
                                          ("body_frame", "mid_ear", "mid-ears from mid-shoulder (l/u/f)", True),
                                          ("body_scalars", "hip_half_width", "hip half-width", False),
                                          ("head_angles", "yaw", "head yaw", False),
                                          ("head_angles", "pitch", "head pitch", False),
                                          ("head_angles", "roll", "head roll", False)]:
            cells = [_fmt(srcs[n]["per_person"][p][group].get(key), vector) for p in persons]
            if any(c != "-" for c in cells):
                rows.append([label] + cells)
        if rows:
            lines.extend([f"## {n}: body frame and head angles per person", ""] + _table(["", *persons], rows)
                         + [""])
    lines.extend(["## Checks (joint order, frames)", ""])
    keys = sorted({k for n in names for k in srcs[n]["checks"]})
    lines.extend(_table(["", *names], [[k] + [str(srcs[n]["checks"].get(k, "-")) for n in names] for k in keys]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--panoptic", action="append", default=[], metavar="DIR",
                    help="Panoptic folder(s) searched for body3DScene_*.json")
    ap.add_argument("--min-conf", type=float, default=0.1, help="Panoptic joints below this confidence are left out")
    ap.add_argument("--max-jump", type=float, default=100.0,
                    help="Panoptic joints further than this (mm) from their 7-frame median are left out (0: keep)")
    ap.add_argument("--motion", action="append", default=[], metavar="FILE",
                    help="motion file(s) (h36m17 mm) for the generated Human3.6M-placement skeletons")
    ap.add_argument("--motion-frames", type=int, default=400, help="generated frames, drawn uniformly")
    ap.add_argument("--motion-stride", type=int, default=10, help="stride when loading the motion files")
    ap.add_argument("--coco17-npz", action="append", default=[], metavar="FILE",
                    help="npz with 'poses' (F, 17, 3) metres, COCO-17 order (optional 'person' (F,))")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the full results here")
    ap.add_argument("--markdown", type=Path, help="write the tables here")
    args = ap.parse_args(argv)
    sources = []
    if args.panoptic:
        sources.append(load_panoptic(args.panoptic, args.min_conf, args.max_jump))
    if args.motion:
        sources.append(generated_h36m(args.motion, args.motion_frames, args.motion_stride, args.seed))
    sources += [load_coco17_npz(p) for p in args.coco17_npz]
    if not sources:
        ap.error("give at least one of --panoptic, --motion, --coco17-npz")
    conventions = __doc__.split("Frames (all right-handed):")[1].split("    python -m")[0].strip()
    result = {"units": "mm, degrees", "min_conf": args.min_conf, "max_jump_mm": args.max_jump,
              "conventions": conventions,
              "sources": {s.name: measure(s) for s in sources}}
    text = markdown(result)
    sys.stdout.write(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
