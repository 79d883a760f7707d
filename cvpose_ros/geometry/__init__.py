"""Camera geometry: camera models and rigid transforms, two- and N-view triangulation, differentiable projection."""
