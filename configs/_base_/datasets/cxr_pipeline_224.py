# The shared image pipeline of the GLoRIA / MGCA family (datasets.md §2.0):
# grayscale in [0, 1], longer side resized to `resize_to` and zero-padded to a
# square, centre (eval) or random (train) `crop`, replicated to three channels,
# normalised with mean = std = 0.5. Never flipped.
data = dict(
    pipeline=dict(
        resize_to=256,
        crop=224,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    ),
)
