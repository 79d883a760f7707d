"""One synchronised frame of keypoints to skeletons: stream sync, input checks, cross-view matching, ids."""
