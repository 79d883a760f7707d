"""`SkeletonPipeline`: one synchronised two-camera frame in, coarse and refined 3D skeletons out.

The whole per-frame logic of the refiner node without rclpy, so the node, the bag evaluation and the demo share it:
validate both views -> keep at most `max_people` per view -> match people across views, repairing one-view
left/right swaps and dropping joints the two views disagree on (`cvpose_ros.pipeline.cross_view`) -> triangulate
all matched people in one batch -> refine them in one batch with the weights of the frame's keypoint layout -> keep
each refined joint within what the 2D evidence allows (`cvpose_ros.refine.guard`) -> blank limb or face joints off
their bones (`implausible_joints`) and drop people who cannot be real (`cvpose_ros.body.plausibility`: too far
from the cameras, torso bones outside a human range; `implausible_person`) -> express in the reference frame ->
assign ids that stay stable over time.
Outputs keep the input's layout (coco17 in, coco17 out); a frame whose views disagree in layout is mapped to
h36m17 (coco17 can be mapped to h36m17, not back) and counted as `layout_mismatch`.

Three or more cameras (`process_views`, `RigSetup`) follow the same steps with the N-view geometry of
`cvpose_ros.pipeline.nview`: people are grouped across all views, triangulated from every view that sees them, and
refined on their best pair of views; two cameras keep the two-view path (`process`) unchanged.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from cvpose_ros.body.plausibility import PlausibilityCheck
from cvpose_ros.body.skeleton import NUM_JOINTS, get_layout
from cvpose_ros.geometry.camera import CameraModel, RigidTransform
from cvpose_ros.geometry.multiview import project_views
from cvpose_ros.geometry.triangulation import PairTriangulation, triangulate_pair
from cvpose_ros.pipeline.association import IdTracker
from cvpose_ros.pipeline.cross_view import CrossViewMatch, MatchConfig, limit_people, match_views
from cvpose_ros.pipeline.nview import PersonGroups, best_pairs, calibrated, group_views, triangulate_groups
from cvpose_ros.pipeline.view_input import FrameError, Problem, ViewInput, ViewKeypoints, validate_view
from cvpose_ros.refine.guard import EvidenceGuard, guard_refinement, guard_views


class RefinerLike(Protocol):
    """What the pipeline needs from `cvpose_ros.refine.refiner.Refiner` (one layout's weights)."""

    enabled: bool

    def refine(self, tri: PairTriangulation, cam1_from_cam0: RigidTransform) -> tuple[np.ndarray, np.ndarray]: ...


def refiner_for(refiner, layout: str) -> RefinerLike | None:
    """The refiner serving `layout`: from a `LayoutRefiners` (has `for_layout`), or a single `Refiner` when its
    layout matches (a refiner without a `layout` attribute is taken as h36m17)."""
    if refiner is None:
        return None
    if hasattr(refiner, "for_layout"):
        return refiner.for_layout(layout)
    return refiner if getattr(refiner, "layout", "h36m17") == layout else None


@dataclass
class CameraSetup:
    """Both cameras' lens models and poses: `reference_from_cam0` places outputs, `cam1_from_cam0` triangulates."""

    cam0: CameraModel
    cam1: CameraModel
    cam1_from_cam0: RigidTransform
    reference_from_cam0: RigidTransform = field(default_factory=RigidTransform.identity)


@dataclass
class RigSetup:
    """The cameras of `SkeletonPipeline.process_views` (three or more in the node): lens models and each camera's
    pose relative to camera 0 (`cam_from_cam0[0]` is the identity); `reference_from_cam0` places outputs."""

    models: tuple[CameraModel | None, ...]  # None: the camera is not usable in this frame (left out)
    cam_from_cam0: tuple[RigidTransform, ...]
    reference_from_cam0: RigidTransform = field(default_factory=RigidTransform.identity)

    def subset(self, cameras: Sequence[int]) -> RigSetup:
        """The rig of the listed cameras only (poses stay relative to camera 0, present or not)."""
        return RigSetup(tuple(self.models[c] for c in cameras), tuple(self.cam_from_cam0[c] for c in cameras),
                        self.reference_from_cam0)

    def __post_init__(self) -> None:
        if len(self.models) != len(self.cam_from_cam0) or len(self.models) < 2:
            raise ValueError(f"a rig needs 2+ cameras with one pose each, got {len(self.models)} models and "
                             f"{len(self.cam_from_cam0)} poses")


@dataclass
class Skeletons:
    """P skeletons in the reference frame (metres, the frame's layout); NaN joints are missing (confidence 0)."""

    track_ids: np.ndarray           # (P,) int64
    joints: np.ndarray              # (P, 17, 3)
    confidence: np.ndarray          # (P, 17)
    reprojection_error: np.ndarray  # (P,) mean over valid joints, pixels

    @classmethod
    def empty(cls) -> Skeletons:
        return cls(np.zeros(0, np.int64), np.zeros((0, NUM_JOINTS, 3)), np.zeros((0, NUM_JOINTS)), np.zeros(0))


@dataclass
class FrameResult:
    """Outputs of one frame plus what went wrong (per-person problems) and how long it took."""

    stamp_ns: int
    coarse: Skeletons
    refined: Skeletons
    refined_applied: bool
    problems: Counter = field(default_factory=Counter)
    processing_ms: float = 0.0
    layout: str = "h36m17"
    guarded_joints: int = 0   # refined joints whose correction the do-no-harm guard shortened
    swap_repairs: int = 0     # person-views whose left/right labels matching repaired
    dropped_joints: int = 0   # joints dropped because the two views disagree on them far beyond the person's level


class SkeletonPipeline:
    """Stateful per-frame processor (state: the id tracker); not thread-safe, one instance per camera pair."""

    def __init__(self, refiner=None, default_layout: str = "h36m17",
                 min_confidence: float = 0.1, min_valid_joints: int = 6, association_gate: float = 0.1,
                 track_max_distance_m: float = 0.5, track_timeout_s: float = 1.0,
                 guard: EvidenceGuard | None = None, max_people: int = 20,
                 matching: MatchConfig | None = None, plausibility: PlausibilityCheck | None = None) -> None:
        """`refiner`: a `LayoutRefiners` (weights per layout), a single `Refiner` (used for its layout) or None.
        `association_gate`: largest median two-view residual of a match, as a fraction of the person's size in the
        image; `matching` (when given) sets every matching option and overrides it."""
        self.refiner = refiner
        self.guard = guard or EvidenceGuard()
        self.plausibility = plausibility or PlausibilityCheck()
        self._last_layout: str | None = None
        self.default_layout = default_layout
        self.min_confidence = float(min_confidence)
        self.min_valid_joints = int(min_valid_joints)
        self.matching = matching or MatchConfig(gate=float(association_gate),
                                                lone_gate=max(float(association_gate), MatchConfig.lone_gate),
                                                min_confidence=self.min_confidence)
        if max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {max_people}")
        self.max_people = int(max_people)
        self.tracker = IdTracker(track_max_distance_m, track_timeout_s)

    def set_association_gate(self, gate: float) -> None:
        """Change the matching gate (a live parameter); the lone-person gate never drops below its default."""
        self.matching = replace(self.matching, gate=float(gate), lone_gate=max(float(gate), MatchConfig.lone_gate))

    @property
    def refinement_enabled(self) -> bool:
        """True when some layout has weights."""
        return self.refiner is not None and bool(self.refiner.enabled)

    def process(self, cameras: CameraSetup, view0: ViewInput, view1: ViewInput) -> FrameResult:
        """Skeletons of everyone matched in both views. Raises FrameError when the frame is unusable as a whole."""
        start = time.perf_counter()
        kp0 = validate_view(view0, self.default_layout, self.min_confidence, self.min_valid_joints)
        kp1 = validate_view(view1, self.default_layout, self.min_confidence, self.min_valid_joints)
        problems = kp0.problems + kp1.problems
        if kp0.layout != kp1.layout:
            kp0, kp1 = kp0.as_h36m(), kp1.as_h36m()
            problems[Problem.LAYOUT_MISMATCH] += 1
        if kp0.layout != self._last_layout:  # ids of one joint definition mean nothing in another
            self.tracker.reset()
            self._last_layout = kp0.layout
        kp0, kp1 = (self._limit(kp, problems) for kp in (kp0, kp1))
        match = match_views(cameras.cam0, cameras.cam1, cameras.cam1_from_cam0, kp0.pixels, kp0.confidence,
                            kp0.track_ids, kp1.pixels, kp1.confidence, kp1.track_ids, get_layout(kp0.layout),
                            self.matching, self._previous_poses(cameras), self.tracker.max_distance_m)
        unmatched = kp0.num_people + kp1.num_people - 2 * len(match.i0)
        if unmatched:
            problems[Problem.UNMATCHED_PEOPLE] += unmatched
        if match.id_disagreements:
            problems[Problem.TRACK_ID_DISAGREEMENT] += match.id_disagreements
        if len(view0.people) + len(view1.people) == 0:
            problems[Problem.NO_PEOPLE] += 1
        coarse, refined, applied, guarded, implausible = self._estimate(cameras, kp0.layout, match, view0.stamp_ns)
        problems += implausible
        return FrameResult(view0.stamp_ns, coarse, refined, applied, +problems,
                           (time.perf_counter() - start) * 1e3, kp0.layout, guarded, match.swap_repairs,
                           match.dropped_joints)

    def process_views(self, rig: RigSetup, views: Sequence[ViewInput | None]) -> FrameResult:
        """Skeletons of everyone seen by at least two of three or more cameras. A view that is None or whose
        camera model is None (the camera left out of the frame), or that is unusable as a whole (counted), is left
        out; FrameError when fewer than two views remain."""
        start = time.perf_counter()
        if len(views) != len(rig.models):
            raise ValueError(f"{len(views)} views for a rig of {len(rig.models)} cameras")
        stamp_ns = next((v.stamp_ns for v in views if v is not None), 0)  # the first camera's in the frame
        usable = [c for c, (v, m) in enumerate(zip(views, rig.models, strict=True)) if v is not None and m is not None]
        if len(usable) < 2:
            raise FrameError(Problem.NO_CAMERA_INFO if sum(v is not None for v in views) >= 2 else Problem.NO_PEOPLE,
                             f"fewer than two cameras in the frame with keypoints and calibration (cameras {usable})")
        if len(usable) < len(views):
            rig, views = rig.subset(usable), [views[c] for c in usable]
        problems: Counter = Counter()
        kps: list[ViewKeypoints | None] = []
        error: FrameError | None = None
        for view in views:
            try:
                kp = validate_view(view, self.default_layout, self.min_confidence, self.min_valid_joints)
            except FrameError as err:
                problems[err.problem] += 1
                error, kp = err, None
            kps.append(kp)
            if kp is not None:
                problems += kp.problems
        present = [kp for kp in kps if kp is not None]
        if len(present) < 2:
            raise error or FrameError(Problem.NO_PEOPLE, "fewer than two cameras in the frame")
        if len({kp.layout for kp in present}) > 1:
            kps = [None if kp is None else kp.as_h36m() for kp in kps]
            problems[Problem.LAYOUT_MISMATCH] += 1
        layout = next(kp.layout for kp in kps if kp is not None)
        if layout != self._last_layout:
            self.tracker.reset()
            self._last_layout = layout
        joints = get_layout(layout).num_joints
        none = ViewKeypoints(np.zeros((0, joints, 2)), np.zeros((0, joints)), np.zeros(0, np.int64), layout=layout)
        kps = [none if kp is None else self._limit(kp, problems) for kp in kps]  # None: a view with a frame error
        groups = group_views(rig.models, rig.cam_from_cam0, [kp.pixels for kp in kps],
                             [kp.confidence for kp in kps], [kp.track_ids for kp in kps], get_layout(layout),
                             self.matching, self._previous_poses(rig), self.tracker.max_distance_m)
        unmatched = sum(kp.num_people for kp in kps) - int((groups.members >= 0).sum())
        if unmatched:
            problems[Problem.UNMATCHED_PEOPLE] += unmatched
        if groups.id_disagreements:
            problems[Problem.TRACK_ID_DISAGREEMENT] += groups.id_disagreements
        if all(len(v.people) == 0 for v in views):
            problems[Problem.NO_PEOPLE] += 1
        coarse, refined, applied, guarded, implausible = self._estimate_views(rig, layout, groups, stamp_ns)
        problems += implausible
        return FrameResult(stamp_ns, coarse, refined, applied, +problems, (time.perf_counter() - start) * 1e3,
                           layout, guarded, groups.swap_repairs, groups.dropped_joints)

    def _estimate_views(self, rig: RigSetup, layout: str, groups: PersonGroups,
                        stamp_ns: int) -> tuple[Skeletons, Skeletons, bool, int, Counter]:
        """N-view counterpart of `_estimate`: triangulate every group from all its views, refine each person on
        their best pair (one batch), guard, drop implausible people, give ids."""
        if groups.num_people == 0:
            self.tracker.update(np.zeros((0, NUM_JOINTS, 3)), stamp_ns)
            return Skeletons.empty(), Skeletons.empty(), False, 0, Counter()
        cams = calibrated(rig.models, rig.cam_from_cam0)
        tri = triangulate_groups(cams, groups.pixels, groups.confidence, self.min_confidence)
        seen = np.isfinite(groups.pixels).all(axis=-1) & (groups.confidence > 0)
        refiner = refiner_for(self.refiner, layout)
        applied = refiner is not None and bool(refiner.enabled)
        refined_cam0, guarded = tri.points, 0
        if applied:
            weights = np.where(seen & (groups.confidence >= self.min_confidence), groups.confidence, 0.0)
            refined_cam0, guarded = self._refine_pairs(cams, tri, seen, groups.pixels, weights, refiner, layout)
        counts = seen.sum(axis=0)
        confidence = np.where(tri.valid, groups.confidence.sum(axis=0) / np.maximum(counts, 1), 0.0)
        valid_count = tri.valid.sum(axis=1)
        mean_error = np.where(valid_count > 0, np.nansum(np.nan_to_num(tri.error), axis=1)
                              / np.maximum(valid_count, 1), np.nan)
        centres = np.stack([cam.center for cam in cams])
        return self._publishable(rig.reference_from_cam0, centres, layout, tri.points, refined_cam0, confidence,
                                 mean_error, stamp_ns, applied, guarded)

    def _refine_pairs(self, cams, tri, seen: np.ndarray, pixels: np.ndarray, weights: np.ndarray,
                      refiner: RefinerLike, layout: str) -> tuple[np.ndarray, int]:
        """CV-UGCN on each person's best pair of views (`cvpose_ros.pipeline.nview.best_pairs`), all people in one
        batch: the N-view pose in the pair's two camera frames, each view's residual (the all-view mean where the view
        does not see the joint); then the guard over every view that sees a joint, with the fit test on the
        triangulation's weights (V, P, J). Returns poses in camera 0's frame."""
        pairs = best_pairs(cams, tri, seen)
        a, b = pairs[:, 0], pairs[:, 1]
        rot = np.stack([c.cam_from_world.R for c in cams])
        trans = np.stack([c.cam_from_world.t for c in cams])
        pose_a = np.einsum("pij,pkj->pki", rot[a], tri.points) + trans[a][:, None]
        pose_b = np.einsum("pij,pkj->pki", rot[b], tri.points) + trans[b][:, None]
        r10 = rot[b] @ np.swapaxes(rot[a], -1, -2)
        t10 = trans[b] - np.einsum("pij,pj->pi", r10, trans[a])
        people = np.arange(len(a))
        per_view = np.stack([tri.residual[a, people], tri.residual[b, people]], axis=1)  # (P, 2, J)
        per_view = np.where(np.isfinite(per_view), per_view, tri.error[:, None])
        refined_a = refiner.refine_arrays(pose_a, pose_b, per_view, tri.valid, r10, t10)[0]
        refined_a = np.where(np.isfinite(refined_a).all(axis=-1, keepdims=True), refined_a, np.nan)
        refined_cam0 = np.einsum("pji,pkj->pki", rot[a], refined_a - trans[a][:, None])  # R^T (x - t)
        guarded = 0
        if self.guard.enabled:
            refined_cam0, limited = guard_views(tri.points, refined_cam0, tri.error,
                                                lambda points: project_views(cams, points), pixels, self.guard,
                                                weights, layout)
            guarded = int(limited.sum())
        return refined_cam0, guarded

    def _limit(self, kp: ViewKeypoints, problems: Counter) -> ViewKeypoints:
        """At most `max_people` people of a view (the least confident extras dropped and counted)."""
        keep = limit_people(kp.confidence, self.max_people)
        if len(keep) == kp.num_people:
            return kp
        problems[Problem.PEOPLE_OVER_LIMIT] += kp.num_people - len(keep)
        return ViewKeypoints(kp.pixels[keep], kp.confidence[keep], kp.track_ids[keep], kp.problems, kp.layout)

    def _previous_poses(self, cameras: CameraSetup | RigSetup) -> np.ndarray | None:
        """Last frame's tracked poses (K, J, 3) in camera 0's frame (they break left/right label ties)."""
        tracks = [t.joints for t in self.tracker.tracks.values()]
        if not tracks:
            return None
        return cameras.reference_from_cam0.inverse().apply(np.stack(tracks))

    def _estimate(self, cameras: CameraSetup, layout: str,
                  match: CrossViewMatch, stamp_ns: int) -> tuple[Skeletons, Skeletons, bool, int, Counter]:
        """Triangulate and refine matched people (one batch each), drop implausible ones and give the rest ids
        (tracks age by stamp)."""
        if len(match.i0) == 0:
            self.tracker.update(np.zeros((0, NUM_JOINTS, 3)), stamp_ns)
            return Skeletons.empty(), Skeletons.empty(), False, 0, Counter()
        kp0, conf0, kp1, conf1 = match.kp0, match.conf0, match.kp1, match.conf1
        tri = triangulate_pair(cameras.cam0, cameras.cam1, cameras.cam1_from_cam0, kp0, conf0, kp1, conf1,
                               self.min_confidence)
        coarse_cam0 = np.where(tri.valid[..., None], tri.cam0, np.nan)
        refiner = refiner_for(self.refiner, layout)
        applied = refiner is not None and bool(refiner.enabled)
        refined_cam0 = refiner.refine(tri, cameras.cam1_from_cam0)[0] if applied else coarse_cam0
        refined_cam0 = np.where(np.isfinite(refined_cam0).all(axis=-1, keepdims=True), refined_cam0, np.nan)
        guarded = 0
        if applied and self.guard.enabled:
            refined_cam0, limited = guard_refinement(
                coarse_cam0, refined_cam0, tri.reprojection_error, cameras.cam0.project, cameras.cam1.project,
                cameras.cam1_from_cam0.apply, kp0, kp1, self.guard, layout)
            guarded = int(limited.sum())
        confidence = np.where(tri.valid, 0.5 * (conf0 + conf1), 0.0)
        errors = np.where(tri.valid, tri.reprojection_error, np.nan)
        counts = tri.valid.sum(axis=1)
        mean_error = np.where(counts > 0, np.nansum(np.nan_to_num(errors, nan=0.0), axis=1) / np.maximum(counts, 1),
                              np.nan)
        centres = np.stack([np.zeros(3), cameras.cam1_from_cam0.inverse().t])  # both cameras, in cam0's frame
        return self._publishable(cameras.reference_from_cam0, centres, layout, coarse_cam0, refined_cam0, confidence,
                                 mean_error, stamp_ns, applied, guarded)

    def _publishable(self, reference_from_cam0: RigidTransform, centres: np.ndarray, layout: str,
                     coarse_cam0: np.ndarray, refined_cam0: np.ndarray, confidence: np.ndarray, mean_error: np.ndarray,
                     stamp_ns: int, applied: bool, guarded: int) -> tuple[Skeletons, Skeletons, bool, int, Counter]:
        """Poses in camera 0's frame -> limb and face joints off their bones blanked, implausible people dropped
        (`cvpose_ros.body.plausibility`, both counted), the rest in the reference frame with ids."""
        keep = np.isfinite(refined_cam0).all(axis=-1).any(axis=-1)  # drop people with no joint at all
        blank = keep[:, None] & (self.plausibility.implausible_joints(coarse_cam0, layout)
                                 | self.plausibility.implausible_joints(refined_cam0, layout))
        coarse_cam0, refined_cam0 = np.where(blank[..., None], np.nan, coarse_cam0), \
            np.where(blank[..., None], np.nan, refined_cam0)
        confidence = np.where(blank, 0.0, confidence)
        implausible = keep & (self.plausibility.implausible(coarse_cam0, centres, layout)
                              | self.plausibility.implausible(refined_cam0, centres, layout))
        keep &= ~implausible
        to_ref = reference_from_cam0
        coarse_ref, refined_ref = to_ref.apply(coarse_cam0), to_ref.apply(refined_cam0)
        ids = np.full(len(keep), -1, dtype=np.int64)
        ids[keep] = self.tracker.update(refined_ref[keep], stamp_ns)
        coarse = Skeletons(ids[keep], coarse_ref[keep], confidence[keep], mean_error[keep])
        refined = Skeletons(ids[keep], refined_ref[keep], confidence[keep], mean_error[keep])
        counts = Counter({Problem.IMPLAUSIBLE_PERSON: int(implausible.sum()),
                          Problem.IMPLAUSIBLE_JOINTS: int((blank & keep[:, None]).sum())})
        return coarse, refined, applied, guarded, +counts

    def reset(self) -> None:
        """Forget tracked people (after a time jump); ids already given are still never reused."""
        self.tracker.reset()
