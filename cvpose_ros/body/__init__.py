"""The human body: skeleton layouts, where detectors place joints, plausibility, left/right swap repair."""
