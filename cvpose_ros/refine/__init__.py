"""CV-UGCN refinement of coarse poses (device, batching) and the do-no-harm guard around it."""
