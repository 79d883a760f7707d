"""More cameras than two: N-view triangulation against the best camera pair, in accuracy and in time.

Run: ``python bench/bench_multiview.py [--people 3] [--seconds 6] [--noise detector] [--json out.json]
[--pipeline-seconds 3] [--latency-people 1 5] [--profile] [--calibration Calib.qca.txt --keypoints detections.npz]``.

Synthetic: four cameras in the corners of the demo room, procedural people, one detector error stream per camera.
Every pair, every triple and all four cameras triangulate the same frames (`cvpose_ros.geometry.multiview`); MPJPE
against the truth is printed as a ratio to the best pair (chosen in hindsight, so the ratio is conservative), and the
time per frame as a ratio to one pair, measured in the same run.
Pipeline: the refiner node's own per-frame work (`SkeletonPipeline`: validation, association, triangulation, CV-UGCN
on the packaged weights with one CPU thread, guard, ids) with the first 2, 3 and 4 of the corner cameras, on the
same frames: MPJPE of the refined output and CPU time per frame as a ratio to two cameras (two cameras run the
two-view path, three and four `process_views`).
Latency (`--latency-people`): the same per-frame work with 2, 3 and 4 cameras, triangulation only and refined, at
each people count; the three camera counts run in turn, repeated, best CPU time of the repeats per row (steadier on
a busy machine than one pass each); printed against two cameras and against the linear bound N/2. `--profile`
prints the top functions of the 4-camera triangulation path (cProfile).
Fit test (`--fit-cost-people`): the cost of the N-view guard's fit test (`guard_fit_chi2`, `cvpose_ros.refine.guard`) on
the refined 3- and 4-camera path: the same frames through two pipelines, fit test on and off (`fit_chi2=0`),
interleaved passes, best CPU time per frame; and `guard_views` alone with and without the fit test on one frame.
Real (optional, by hand): a >= 4-camera calibration and cached detections (`cvpose-eval --detections-cache`
format); with no truth, each camera in turn is held out and the others' triangulations are scored by their
reprojection error in it (a view they did not use); the same for the node's pipeline (the other cameras through
the N-camera path, each pair of them through the two-camera path), coarse and refined, with the 95 % interval
(paired bootstrap over frames) of the N-camera result minus the best pair and minus the pair the node would pick.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from cvpose_ros.calibration import CalibratedCamera, read_calibration
from cvpose_ros.devtools import synthetic
from cvpose_ros.geometry.multiview import align, estimate_lags, residuals, triangulate_views
from cvpose_ros.pipeline.view_input import FrameError, PersonInput, ViewInput

ROOM = synthetic.ROOM_SIZE_M


def corner_rig() -> list[CalibratedCamera]:
    """Four 1280x720 cameras near the ceiling corners, aimed at the middle of the room."""
    return [CalibratedCamera(c.name, c.model, c.cam_from_world) for c in synthetic.corner_rig(4, ROOM).cameras]


def _variants(views: int) -> list[tuple[bool, bool]]:
    """(reject_outliers, robust) rows of `triangulate_views` worth running with this many views: plain DLT; from
    three views the reweighted one; from four also the leave-one-out rejection, alone and with reweighting."""
    rows = [(False, False)]
    if views >= 3:
        rows.append((False, True))
    if views >= 4:
        rows += [(True, False), (True, True)]
    return rows


def mpjpe_mm(points: np.ndarray, truth: np.ndarray) -> float:
    return float(np.nanmean(np.linalg.norm(points - truth, axis=-1)) * 1000.0)


def time_per_call(fn, min_time: float = 0.5) -> float:
    fn()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_time:
        fn()
        count += 1
    return (time.perf_counter() - start) / count


def synthetic_run(people: int, seconds: float, noise: str, seed: int) -> dict:
    cameras = corner_rig()
    rig_cams = [synthetic.RigCamera(c.name, c.model, c.cam_from_world, f"{c.name}_optical_frame") for c in cameras]
    scene = synthetic.generate_scene(people, seconds, 30.0, seed=seed, room=ROOM)
    views = [synthetic.project_view(scene, cam, noise, seed * 10 + i) for i, cam in enumerate(rig_cams)]
    pixels = np.stack([v.keypoints for v in views])       # (V, T, P, J, 2)
    conf = np.stack([v.confidence for v in views])        # (V, T, P, J)
    truth = scene.joints
    results: dict[str, dict] = {}
    for size in (2, 3, 4):
        for subset in itertools.combinations(range(4), size):
            sel = list(subset)
            for reject, robust in _variants(size):
                cams = [cameras[i] for i in sel]
                points = triangulate_views(cams, pixels[sel], conf[sel], reject_outliers=reject, robust=robust)
                key = "+".join(str(i) for i in sel) + (" reject" if reject else "") + (" robust" if robust else "")
                results[key] = {"views": size, "mpjpe_mm": mpjpe_mm(points, truth),
                                "seconds": time_per_call(lambda c=cams, s=sel, r=reject, b=robust: triangulate_views(
                                    c, pixels[s, :1], conf[s, :1], reject_outliers=r, robust=b), 0.3)}
    return results


def scene_view_input(views: synthetic.SceneKeypoints, t: int, layout: str = "h36m17", period_ns: int = 1) -> ViewInput:
    """Frame t of one camera's scene keypoints as the pipeline's input (people the detector would report),
    stamped 1000 + t x `period_ns`."""
    people = [PersonInput(-1, views.keypoints[t, p, :, 0], views.keypoints[t, p, :, 1], views.confidence[t, p])
              for p in range(views.keypoints.shape[1]) if views.visible[t, p]]
    return ViewInput(1_000 + t * period_ns, "", layout, people)


def pipeline_run(people: int, seconds: float, noise: str, seed: int, refine: bool) -> dict:
    """MPJPE (mm) and CPU ms per frame of `SkeletonPipeline` with 2, 3 and 4 corner cameras on the same frames."""
    from cvpose_ros.pipeline.frame_processor import CameraSetup, RigSetup, SkeletonPipeline
    from cvpose_ros.refine.refiner import LayoutRefiners

    scene = synthetic.generate_scene(people, seconds, 30.0, seed=seed, room=ROOM)
    rig = synthetic.corner_rig(4, ROOM)
    views = synthetic.project_scene(scene, rig, noise, seed)
    c0 = rig.cameras[0].cam_from_world
    truth = c0.apply(scene.joints)
    refiner = LayoutRefiners([], "cpu", num_threads=1) if refine else None
    out = {}
    pair = CameraSetup(rig.cameras[0].model, rig.cameras[1].model, rig.cam1_from_cam0)
    for count in (2, 3, 4):
        pipe = SkeletonPipeline(refiner)
        cams = rig.cameras[:count]
        setup = RigSetup(tuple(c.model for c in cams), tuple(c.cam_from_world.compose(c0.inverse()) for c in cams))

        def step(t: int, p: SkeletonPipeline = pipe, s: RigSetup = setup, n: int = count):
            if n == 2:  # the two-camera path, as the node runs it
                return p.process(pair, scene_view_input(views[0], t), scene_view_input(views[1], t))
            return p.process_views(s, [scene_view_input(v, t) for v in views[:n]])

        errors, cpu = [], 0.0
        for t in range(scene.num_frames):
            start = time.process_time()
            joints = step(t).refined.joints
            cpu += time.process_time() - start
            if len(joints):
                dist = np.nanmean(np.linalg.norm(joints[:, None] - truth[t][None], axis=-1), axis=-1)
                errors += list(dist.min(axis=1))
        out[f"{count} cameras"] = {"views": count, "mpjpe_mm": float(np.mean(errors) * 1e3),
                                   "ms_per_frame": cpu / scene.num_frames * 1e3, "person_frames": len(errors)}
    return out


def latency_run(people: int, seconds: float, noise: str, seed: int, refine: bool, repeats: int = 5,
                profile: bool = False) -> dict:
    """Best CPU ms per frame (over `repeats` interleaved passes) of `SkeletonPipeline` with 2, 3 and 4 corner
    cameras on the same frames (two cameras: the two-view path, as the node runs it)."""
    import cProfile
    import pstats

    from cvpose_ros.pipeline.frame_processor import CameraSetup, RigSetup, SkeletonPipeline
    from cvpose_ros.refine.refiner import LayoutRefiners

    scene = synthetic.generate_scene(people, seconds, 30.0, seed=seed, room=ROOM)
    rig = synthetic.corner_rig(4, ROOM)
    views = synthetic.project_scene(scene, rig, noise, seed)
    inputs = [[scene_view_input(v, t) for v in views] for t in range(scene.num_frames)]
    c0 = rig.cameras[0].cam_from_world
    pair = CameraSetup(rig.cameras[0].model, rig.cameras[1].model, rig.cam1_from_cam0)
    refiner = LayoutRefiners([], "cpu", num_threads=1) if refine else None
    passes = {}
    for count in (2, 3, 4):
        cams = rig.cameras[:count]
        setup = RigSetup(tuple(c.model for c in cams), tuple(c.cam_from_world.compose(c0.inverse()) for c in cams))
        pipe = SkeletonPipeline(refiner)

        def one_pass(p: SkeletonPipeline = pipe, s: RigSetup = setup, n: int = count) -> None:
            for frame in inputs:
                if n == 2:
                    p.process(pair, frame[0], frame[1])
                else:
                    p.process_views(s, frame[:n])
        passes[count] = one_pass
    best = dict.fromkeys(passes, np.inf)
    for _ in range(repeats):
        for count, one_pass in passes.items():
            start = time.process_time()
            one_pass()
            best[count] = min(best[count], (time.process_time() - start) / scene.num_frames * 1e3)
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        passes[4]()
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    return {f"{count} cameras": {"views": count, "ms_per_frame": ms} for count, ms in best.items()}


def fit_cost_run(people: int, seconds: float, noise: str, seed: int, repeats: int = 5) -> dict:
    """CPU ms per frame of the refined N-view pipeline with the fit test on and off (3 and 4 corner cameras, the
    same frames, interleaved passes, best of `repeats`), and of `guard_views` alone with and without it."""
    from cvpose_ros.body.skeleton import get_layout
    from cvpose_ros.geometry.multiview import project_views
    from cvpose_ros.pipeline.frame_processor import RigSetup, SkeletonPipeline
    from cvpose_ros.pipeline.nview import calibrated, group_views, triangulate_groups
    from cvpose_ros.refine.guard import EvidenceGuard, guard_views
    from cvpose_ros.refine.refiner import LayoutRefiners

    scene = synthetic.generate_scene(people, seconds, 30.0, seed=seed, room=ROOM)
    rig = synthetic.corner_rig(4, ROOM)
    views = synthetic.project_scene(scene, rig, noise, seed)
    inputs = [[scene_view_input(v, t) for v in views] for t in range(scene.num_frames)]
    c0 = rig.cameras[0].cam_from_world
    refiner = LayoutRefiners([], "cpu", num_threads=1)
    out = {}
    for count in (3, 4):
        cams = rig.cameras[:count]
        setup = RigSetup(tuple(c.model for c in cams), tuple(c.cam_from_world.compose(c0.inverse()) for c in cams))
        pipes = {k: SkeletonPipeline(refiner, guard=EvidenceGuard(fit_chi2=k)) for k in (0.0, 2.0)}
        best = dict.fromkeys(pipes, np.inf)
        for _ in range(repeats):
            for k, pipe in pipes.items():
                start = time.process_time()
                for frame in inputs:
                    pipe.process_views(setup, frame[:count])
                best[k] = min(best[k], (time.process_time() - start) / scene.num_frames * 1e3)
        # guard_views alone on the first frame's people (a refined pose 2 cm off the triangulation)
        models, poses = setup.models, setup.cam_from_cam0
        kps = [v.keypoints[0][v.visible[0]] for v in views[:count]]
        confs = [v.confidence[0][v.visible[0]] for v in views[:count]]
        groups = group_views(models, poses, kps, confs, [np.full(len(k), -1) for k in kps], get_layout("h36m17"))
        calib = calibrated(models, poses)
        tri = triangulate_groups(calib, groups.pixels, groups.confidence)
        refined = tri.points + 0.02

        def guard(conf, calib=calib, tri=tri, refined=refined, groups=groups):
            return guard_views(tri.points, refined, tri.error, lambda x: project_views(calib, x), groups.pixels,
                               EvidenceGuard(), conf)
        plain = time_per_call(lambda g=guard: g(None), 0.3)
        fit = time_per_call(lambda g=guard, c=groups.confidence: g(c), 0.3)
        out[f"{count} cameras"] = {"views": count, "ms_off": best[0.0], "ms_on": best[2.0],
                                   "guard_ms_off": plain * 1e3, "guard_ms_on": fit * 1e3}
    return out


def _recording(calibration: Path, keypoints: Path) -> tuple[list, np.ndarray, np.ndarray]:
    """The recording's cameras and its detections (V, T, J, 2) / (V, T, J), aligned by the estimated frame lags."""
    cameras = read_calibration([calibration])
    data = np.load(keypoints)
    pix = [data[f"keypoints_{i}"] for i in range(len(cameras))]
    conf = [data[f"confidence_{i}"] for i in range(len(cameras))]
    lags, _ = estimate_lags(cameras, pix, conf)
    return cameras, np.stack(align(pix, lags)), np.stack(align(conf, lags))


def real_run(calibration: Path, keypoints: Path) -> dict:
    cameras, P, C = _recording(calibration, keypoints)
    out: dict[str, dict] = {}
    for held in range(len(cameras)):
        others = [i for i in range(len(cameras)) if i != held]
        scores = {}
        for size in range(2, len(others) + 1):
            for subset in itertools.combinations(others, size):
                sel = list(subset)
                for reject, robust in _variants(size):
                    points = triangulate_views([cameras[i] for i in sel], P[sel], C[sel], 0.5, reject_outliers=reject,
                                               robust=robust)
                    error = residuals([cameras[held]], points, P[held:held + 1], C[held:held + 1], 0.5)
                    key = "+".join(str(i) for i in sel) + (" reject" if reject else "") + (" robust" if robust else "")
                    scores[key] = float(np.nanmedian(error))
        out[cameras[held].name] = scores
    return out


def _person(pixels: np.ndarray, confidence: np.ndarray) -> list[PersonInput]:
    conf = np.nan_to_num(confidence, nan=0.0)
    return [PersonInput(-1, pixels[:, 0], pixels[:, 1], conf)] if (conf > 0).any() else []


def median_difference_interval(a: np.ndarray, b: np.ndarray, seed: int = 0, resamples: int = 2000,
                               ) -> tuple[float, float]:
    """95 % interval of median(a) - median(b) for per-frame errors (T, J) of two methods on the same frames, by a
    paired bootstrap over frames (a frame's joints stay together: their errors are not independent). Only joints
    both methods estimated count, so a method is not judged on frames the other skipped."""
    both = np.isfinite(a) & np.isfinite(b)
    a, b = np.where(both, a, np.nan), np.where(both, b, np.nan)
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, len(a), size=(resamples, len(a)))
    diff = (np.nanmedian(a[frames].reshape(resamples, -1), axis=1)
            - np.nanmedian(b[frames].reshape(resamples, -1), axis=1))
    low, high = np.percentile(diff, [2.5, 97.5])
    return float(low), float(high)


def node_pair(cameras: list, pixels: np.ndarray, confidence: np.ndarray) -> tuple[int, int]:
    """The pair of these cameras the N-camera node refines most often (`nview.best_pairs`, frame by frame): the
    pair a user would pick for a two-camera node without a held-out camera to judge by."""
    from cvpose_ros.pipeline.nview import best_pairs, triangulate_groups

    conf = np.nan_to_num(confidence, nan=0.0)
    tri = triangulate_groups(cameras, pixels, conf, 0.5)  # frames as people: (V, T, J, 2)
    chosen = best_pairs(cameras, tri, np.isfinite(pixels).all(axis=-1) & (conf >= 0.5))
    pairs, counts = np.unique(chosen[np.isfinite(tri.points).any(axis=(1, 2))], axis=0, return_counts=True)
    a, b = pairs[np.argmax(counts)]
    return int(a), int(b)


def real_pipeline_run(calibration: Path, keypoints: Path) -> dict:
    """The node's pipeline on the real recording (one person, coco17 detections, packaged coco17 weights): each
    camera held out in turn, the others through the N-camera path and each pair of them through the two-camera
    path; median reprojection error (px) in the held-out camera of the coarse and the refined pose, and the 95 %
    interval (paired bootstrap over frames) of the N-camera result minus the best pair (hindsight; coarse and
    refined) and, refined, minus the pair the node itself would pick."""
    from cvpose_ros.body.plausibility import PlausibilityCheck
    from cvpose_ros.pipeline.frame_processor import CameraSetup, RigSetup, SkeletonPipeline
    from cvpose_ros.refine.refiner import LayoutRefiners

    cameras, P, C = _recording(calibration, keypoints)
    refiner = LayoutRefiners([], "cpu", num_threads=1)

    def run(sel: list[int]) -> tuple[np.ndarray, np.ndarray]:
        world_from_first = cameras[sel[0]].cam_from_world.inverse()
        poses = tuple(cameras[i].cam_from_world.compose(world_from_first) for i in sel)
        pipe = SkeletonPipeline(refiner, default_layout="coco17", plausibility=PlausibilityCheck(bones=False))
        coarse = np.full(P.shape[1:3] + (3,), np.nan)
        refined = coarse.copy()
        for t in range(P.shape[1]):
            views = [ViewInput(t, cameras[i].name, "coco17", _person(P[i, t], C[i, t])) for i in sel]
            try:
                if len(sel) == 2:
                    setup = CameraSetup(cameras[sel[0]].model, cameras[sel[1]].model, poses[1], world_from_first)
                    result = pipe.process(setup, *views)
                else:
                    result = pipe.process_views(RigSetup(tuple(cameras[i].model for i in sel), poses,
                                                         world_from_first), views)
            except FrameError:
                continue
            if len(result.refined.joints):
                coarse[t], refined[t] = result.coarse.joints[0], result.refined.joints[0]
        return coarse, refined

    out: dict[str, dict] = {}
    for held in range(len(cameras)):
        others = [i for i in range(len(cameras)) if i != held]
        errors = {}
        for subset in [*itertools.combinations(others, 2), tuple(others)]:
            errors["+".join(str(i) for i in subset)] = [
                residuals([cameras[held]], p, P[held:held + 1], C[held:held + 1], 0.5)[0] for p in run(list(subset))]
        sets = {key: [float(np.nanmedian(e)) for e in pair] for key, pair in errors.items()}  # coarse, refined
        many = "+".join(str(i) for i in others)
        pairs = [key for key in errors if key != many]
        best = min(pairs, key=lambda key: sets[key][1])
        best_coarse = min(pairs, key=lambda key: sets[key][0])
        a, b = node_pair([cameras[i] for i in others], P[others], C[others])
        own = f"{others[a]}+{others[b]}"
        out[cameras[held].name] = {
            "sets": sets, "all_others": many, "best_pair": best, "best_pair_coarse": best_coarse, "node_pair": own,
            "coarse_minus_best_pair_px": median_difference_interval(errors[many][0], errors[best_coarse][0]),
            "refined_minus_best_pair_px": median_difference_interval(errors[many][1], errors[best][1]),
            "refined_minus_node_pair_px": median_difference_interval(errors[many][1], errors[own][1])}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--people", type=int, default=3)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--noise", default="detector")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pipeline-seconds", type=float, default=3.0, help="scene length of the pipeline rows; 0 = skip")
    p.add_argument("--latency-people", type=int, nargs="*", default=[], help="people counts of the latency rows")
    p.add_argument("--repeats", type=int, default=5, help="interleaved passes per latency row (best kept)")
    p.add_argument("--fit-cost-people", type=int, nargs="*", default=[],
                   help="people counts of the fit test's cost rows (refined N-view path, fit test on / off)")
    p.add_argument("--profile", action="store_true", help="cProfile the 4-camera latency path")
    p.add_argument("--synthetic", type=int, default=1, help="0 = skip the synthetic accuracy rows")
    p.add_argument("--calibration", type=Path)
    p.add_argument("--keypoints", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}")
    report: dict = {}
    if args.synthetic:
        report["synthetic"] = rows = synthetic_run(args.people, args.seconds, args.noise, args.seed)
        pairs = {k: v for k, v in rows.items() if v["views"] == 2}
        best_pair = min(pairs, key=lambda k: pairs[k]["mpjpe_mm"])
        base_time = float(np.mean([v["seconds"] for v in pairs.values()]))
        print(f"synthetic: 4 corner cameras, {args.people} people, {args.seconds:g} s, noise {args.noise}; "
              f"best pair {best_pair} ({pairs[best_pair]['mpjpe_mm']:.1f} mm)")
        print(f"{'cameras':<14} {'MPJPE mm':>9} {'/ best pair':>12} {'time / pair':>12}")
        for key, row in rows.items():
            print(f"{key:<14} {row['mpjpe_mm']:9.1f} {row['mpjpe_mm'] / pairs[best_pair]['mpjpe_mm']:12.2f} "
                  f"{row['seconds'] / base_time:12.2f}")
    for people in args.latency_people:
        print(f"latency, {people} people (best CPU ms per frame of {args.repeats} interleaved passes):")
        print(f"{'cameras':<12} {'path':<14} {'ms/frame':>9} {'/ 2 cams':>9} {'/ (N/2)':>8}")
        for refine in (False, True):
            rows = latency_run(people, args.pipeline_seconds or 2.0, args.noise, args.seed, refine, args.repeats,
                               args.profile and not refine)
            report[f"latency_{people}_{'refined' if refine else 'triangulation'}"] = rows
            two = rows["2 cameras"]["ms_per_frame"]
            for key, row in rows.items():
                ratio = row["ms_per_frame"] / two
                print(f"{key:<12} {'refined' if refine else 'triangulation':<14} {row['ms_per_frame']:9.2f} "
                      f"{ratio:9.2f} {ratio / (row['views'] / 2):8.2f}", flush=True)
    for people in args.fit_cost_people:
        rows = fit_cost_run(people, args.pipeline_seconds or 2.0, args.noise, args.seed, args.repeats)
        report[f"fit_cost_{people}"] = rows
        print(f"fit test cost, {people} people (refined N-view path, best CPU ms per frame of {args.repeats} "
              f"interleaved passes; guard_views alone, ms per call):")
        print(f"{'cameras':<12} {'fit off':>8} {'fit on':>8} {'on / off':>9} {'guard off':>10} {'guard on':>9} "
              f"{'on / off':>9}")
        for key, row in rows.items():
            print(f"{key:<12} {row['ms_off']:8.2f} {row['ms_on']:8.2f} {row['ms_on'] / row['ms_off']:9.2f} "
                  f"{row['guard_ms_off']:10.3f} {row['guard_ms_on']:9.3f} "
                  f"{row['guard_ms_on'] / row['guard_ms_off']:9.2f}", flush=True)
    if args.pipeline_seconds > 0:
        print(f"pipeline (SkeletonPipeline, CPU time per frame; {args.people} people, {args.pipeline_seconds:g} s):")
        print(f"{'cameras':<12} {'path':<14} {'MPJPE mm':>9} {'ms/frame':>9} {'time / 2 cams':>14} {'/ cams/2':>9}")
        for refine in (False, True):
            rows = pipeline_run(args.people, args.pipeline_seconds, args.noise, args.seed, refine)
            report["pipeline_refined" if refine else "pipeline_triangulation"] = rows
            two = rows["2 cameras"]["ms_per_frame"]
            for key, row in rows.items():
                ratio = row["ms_per_frame"] / two
                print(f"{key:<12} {'refined' if refine else 'triangulation':<14} {row['mpjpe_mm']:9.1f} "
                      f"{row['ms_per_frame']:9.2f} {ratio:14.2f} {ratio / (row['views'] / 2):9.2f}")
    if args.calibration and args.keypoints:
        report["real"] = real_run(args.calibration, args.keypoints)
        print("real: median reprojection error (px) in the held-out camera")
        for held, scores in report["real"].items():
            pair_scores = {k: v for k, v in scores.items() if k.count("+") == 1}
            best = min(pair_scores.values())
            line = ", ".join(f"{k} {v:.1f}{' <' if v < best else ''}" for k, v in scores.items() if k.count("+") >= 2)
            pairs_text = " ".join(f"{k} {v:.1f}" for k, v in pair_scores.items())
            print(f"  held out {held}: pairs {pairs_text}; mean {np.mean(list(pair_scores.values())):.1f}, best "
                  f"{best:.1f}; {line} (< beats the best pair)")
        report["real_pipeline"] = real_pipeline_run(args.calibration, args.keypoints)
        print("real, the node's pipeline: median reprojection error (px) in the held-out camera, coarse / refined; "
              "refined N cameras minus a pair, 95 % interval (paired bootstrap over frames)")
        for held, scores in report["real_pipeline"].items():
            sets = scores["sets"]
            pairs = [v for k, v in sets.items() if k != scores["all_others"]]
            many = sets[scores["all_others"]]
            best, own = scores["best_pair"], scores["node_pair"]
            (c_low, c_high), (low, high) = scores["coarse_minus_best_pair_px"], scores["refined_minus_best_pair_px"]
            own_low, own_high = scores["refined_minus_node_pair_px"]
            print(f"  held out {held}: other cameras {many[0]:.1f} / {many[1]:.1f}; their pairs best "
                  f"{min(p[0] for p in pairs):.1f} / {min(p[1] for p in pairs):.1f}, mean "
                  f"{np.mean([p[0] for p in pairs]):.1f} / {np.mean([p[1] for p in pairs]):.1f}; minus best pair "
                  f"{scores['best_pair_coarse']} [{c_low:+.1f}, {c_high:+.1f}] / {best} [{low:+.1f}, {high:+.1f}]; "
                  f"node's pair {own} {sets[own][1]:.1f}, refined minus it [{own_low:+.1f}, {own_high:+.1f}]")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
